import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IpsecError } from './errors.js';
import { PacketReader } from './packet-reader.js';
import { DEFAULT_LIMITS, decodePacket, encodePacket, PacketType, type ViciMessage } from './vici-wire.js';

const key = fc.string({ maxLength: 24, unit: 'binary' }).filter((k) => Buffer.byteLength(k) <= 255);
const value = fc.string({ maxLength: 64, unit: 'binary' });
const { message } = fc.letrec<{ message: ViciMessage; entry: ViciMessage[string] }>((tie) => ({
  message: fc.dictionary(key, tie('entry'), { maxKeys: 6, noNullPrototype: false }),
  entry: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    value,
    fc.array(value, { maxLength: 5 }),
    tie('message'),
  ),
}));
const types = [PacketType.CMD_REQUEST, PacketType.CMD_RESPONSE, PacketType.EVENT] as const;

const body = (packet: Buffer) => packet.subarray(4);

describe('VICI wire format', () => {
  it('decode(encode(x)) = x for any message', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...types),
        fc.string({ minLength: 1, maxLength: 40 }),
        message,
        (type, name, m) => {
          const packet = encodePacket(type, name, m);
          expect(packet.readUInt32BE(0)).toBe(packet.length - 4);
          const decoded = decodePacket(body(packet));
          expect(decoded.type).toBe(type);
          if (type !== PacketType.CMD_RESPONSE) expect(decoded.name).toBe(name);
          expect(decoded.message).toEqual(m);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('cuts any stream of packets the same, however the chunks fall', () => {
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(64), { maxLength: 20 }),
        (ms, cuts) => {
          const stream = Buffer.concat(ms.map((m) => encodePacket(PacketType.EVENT, 'list-sa', m)));
          const reader = new PacketReader();
          const out = [];
          let at = 0;
          for (const cut of [...cuts, stream.length]) {
            const next = Math.min(stream.length, at + cut);
            out.push(...reader.push(stream.subarray(at, next)));
            at = next;
          }
          out.push(...reader.push(stream.subarray(at)));
          expect(out.map((p) => p.message)).toEqual(ms);
          expect(reader.bufferedBytes).toBe(0);
        },
      ),
    );
  });

  it('a truncated packet is a typed error or a smaller valid message, never a crash', () => {
    fc.assert(
      fc.property(message, fc.nat(), (m, cut) => {
        const b = body(encodePacket(PacketType.EVENT, 'ev', m));
        const prefix = b.subarray(0, cut % (b.length + 1));
        try {
          decodePacket(prefix);
        } catch (err) {
          expect(IpsecError.isInstance(err)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes from a hostile daemon never crash the reader nor make it hold more than the limit', () => {
    const limits = { maxMessageBytes: 256, maxDepth: 4 };
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 40, maxLength: 300 }), { minLength: 2, maxLength: 10 }),
        (chunks) => {
          const reader = new PacketReader(limits);
          try {
            for (const c of chunks) {
              reader.push(Buffer.from(c));
              expect(reader.bufferedBytes).toBeLessThanOrEqual(4 + limits.maxMessageBytes);
            }
          } catch (err) {
            expect(IpsecError.isInstance(err)).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses an oversized packet on its 4-byte header, before buffering a byte of it', () => {
    const reader = new PacketReader({ maxMessageBytes: 1024, maxDepth: 8 });
    const header = Buffer.alloc(4);
    header.writeUInt32BE(0xffffffff);
    expect(() => reader.push(header)).toThrow(
      expect.objectContaining({ code: 'ERR_SOCK_IPSEC_MESSAGE_TOO_LARGE' }),
    );
    expect(reader.bufferedBytes).toBe(0);
    // Exactly at the limit is fine.
    const ok = new PacketReader({ maxMessageBytes: 1024, maxDepth: 8 });
    const packet = encodePacket(PacketType.EVENT, 'e', { k: 'x'.repeat(1024 - 8) });
    expect(packet.length).toBe(4 + 1024);
    expect(ok.push(packet)).toHaveLength(1);
  });

  it('stops deep nesting at maxDepth without recursion (a million levels deep)', () => {
    const depth = 1_000_000;
    const evil = Buffer.alloc(1 + depth * 3);
    evil[0] = PacketType.CMD_RESPONSE;
    for (let i = 0; i < depth; i++) evil.set([1, 1, 0x61], 1 + i * 3); // SECTION_START "a"
    expect(() => decodePacket(evil)).toThrow(expect.objectContaining({ code: 'ERR_SOCK_IPSEC_TOO_DEEP' }));
    const nested: ViciMessage = {};
    let at = nested;
    for (let i = 1; i < DEFAULT_LIMITS.maxDepth; i++) {
      const next: ViciMessage = {};
      at.s = next;
      at = next;
    }
    expect(decodePacket(body(encodePacket(PacketType.CMD_RESPONSE, undefined, nested))).message).toEqual(
      nested,
    );
    at.s = {};
    expect(() => encodePacket(PacketType.CMD_RESPONSE, undefined, nested)).toThrow(
      expect.objectContaining({ code: 'ERR_SOCK_IPSEC_ENCODE' }),
    );
  });

  it('refuses what VICI cannot carry, before writing anything', () => {
    const enc = (m: ViciMessage) => () => encodePacket(PacketType.CMD_REQUEST, 'load-conn', m);
    const code = expect.objectContaining({ code: 'ERR_SOCK_IPSEC_ENCODE' });
    expect(enc({ ['k'.repeat(256)]: 'v' })).toThrow(code);
    expect(enc({ k: 'v'.repeat(65_536) })).toThrow(code);
    expect(enc({ k: ['ok', 'v'.repeat(65_536)] })).toThrow(code);
    expect(enc({ k: [{} as unknown as string] })).toThrow(code);
    expect(enc({ k: 5 as unknown as string })).toThrow(code);
    expect(() => encodePacket(PacketType.CMD_REQUEST, '', {})).toThrow(code);
    expect(() =>
      encodePacket(
        PacketType.CMD_REQUEST,
        'x',
        { a: 'b'.repeat(600) },
        { maxMessageBytes: 512, maxDepth: 4 },
      ),
    ).toThrow(code);
  });

  it('keeps a key named __proto__ as data', () => {
    const m = JSON.parse('{"__proto__": {"polluted": "yes"}}') as ViciMessage;
    const decoded = decodePacket(body(encodePacket(PacketType.EVENT, 'e', m))).message!;
    expect(Object.keys(decoded)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('names the malformation', () => {
    const err = (bytes: number[]) => {
      try {
        decodePacket(Buffer.from(bytes));
      } catch (e) {
        return (e as IpsecError).code;
      }
      return 'no error';
    };
    expect(err([])).toBe('ERR_SOCK_IPSEC_PROTOCOL');
    expect(err([9])).toBe('ERR_SOCK_IPSEC_PROTOCOL'); // unknown packet type
    expect(err([1, 2])).toBe('ERR_SOCK_IPSEC_PROTOCOL'); // section end at top level
    expect(err([1, 1, 1, 0x61])).toBe('ERR_SOCK_IPSEC_PROTOCOL'); // unclosed section
    expect(err([1, 4, 1, 0x6c, 1])).toBe('ERR_SOCK_IPSEC_PROTOCOL'); // section start inside a list
    expect(err([1, 3, 1, 0x6b, 0, 9, 0x61])).toBe('ERR_SOCK_IPSEC_PROTOCOL'); // value longer than the packet
    expect(err([5, 0])).toBe('ERR_SOCK_IPSEC_PROTOCOL'); // trailing bytes on EVENT_CONFIRM
    expect(err([1, 3, 1, 0x6b, 0, 1, 0x61])).toBe('no error');
  });
});
