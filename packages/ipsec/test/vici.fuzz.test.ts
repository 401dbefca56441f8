/**
 * Fuzz tests for everything that parses input from the daemon or the user: the VICI wire decoder, the
 * packet reader on hostile streams (split anywhere, bytes flipped), and the validators that run before
 * anything reaches charon. `FUZZ_RUNS` sets the cases per property (see fuzz/harness.ts).
 */
import fc from 'fast-check';
import { describe } from 'vitest';
import { check, expectTyped, fuzzIt, mutate, split } from '../../../fuzz/harness.js';
import { PacketReader } from '../src/packet-reader.js';
import { checkProposals } from '../src/proposals.js';
import { checkCidr, checkIdentity, checkName } from '../src/validate.js';
import { decodePacket, encodePacket, PacketType, type ViciMessage } from '../src/vici-wire.js';

const WIRE = ['ERR_SOCK_IPSEC_PROTOCOL', 'ERR_SOCK_IPSEC_TOO_DEEP', 'ERR_SOCK_IPSEC_MESSAGE_TOO_LARGE'];
const LIMITS = { maxMessageBytes: 4096, maxDepth: 6 };

const { message } = fc.letrec<{ message: ViciMessage; entry: ViciMessage[string] }>((tie) => ({
  message: fc.dictionary(fc.string({ maxLength: 8 }), tie('entry'), { maxKeys: 4 }),
  entry: fc.oneof(
    { depthSize: 'small' },
    fc.string({ maxLength: 16 }),
    fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
    tie('message'),
  ),
}));
const packet = message.map((m) => {
  try {
    return encodePacket(PacketType.EVENT, 'list-sa', m, LIMITS);
  } catch {
    return encodePacket(PacketType.EVENT, 'list-sa', {}, LIMITS);
  }
});

describe('VICI wire', () => {
  fuzzIt(
    'ipsec/vici-reader',
    'valid packets flipped and split anywhere: packets or a typed error, never more buffered than the limit',
    fc.tuple(
      fc.array(packet, { minLength: 1, maxLength: 4 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.array(fc.nat(), { maxLength: 6 }),
    ),
    ([packets, edits, cuts]) => {
      const stream = mutate(Buffer.concat(packets), edits);
      const reader = new PacketReader(LIMITS);
      try {
        for (const part of split(stream, cuts)) {
          reader.push(part);
          check(reader.bufferedBytes <= 4 + LIMITS.maxMessageBytes, 'buffered past the limit');
        }
      } catch (err) {
        expectTyped(err, WIRE);
      }
    },
  );

  fuzzIt(
    'ipsec/vici-decode',
    'random bodies: a message or a typed error',
    fc.uint8Array({ maxLength: 512 }),
    (bytes) => {
      try {
        decodePacket(Buffer.from(bytes), LIMITS);
      } catch (err) {
        expectTyped(err, WIRE);
      }
    },
  );
});

describe('validators', () => {
  const text = fc.oneof(
    fc.string({ maxLength: 70 }),
    fc.constantFrom('%any', '*', 'a b', 'gw.example; reboot', '-n', '../x', 'CN=a', 'a@b.c', '10.0.0.0/8'),
  );
  fuzzIt('ipsec/names', 'a name or identity is accepted only without syntax characters', text, (input) => {
    for (const fn of [checkName, checkIdentity]) {
      try {
        const out = fn('f', input);
        check(!/[\s;%*"'`$\\|&<>(){}\u0000-\u001f]/.test(out.replace(/ /g, '')), `accepted ${out}`);
        check(!out.startsWith('-') && !out.startsWith('%'), `accepted ${out}`);
      } catch (err) {
        expectTyped(err, ['ERR_SOCK_IPSEC_INVALID_OPTION']);
      }
    }
  });
  fuzzIt(
    'ipsec/cidr',
    'a selector is canonical or a typed error',
    fc.oneof(text, fc.ipV4(), fc.ipV6()),
    (input) => {
      try {
        const t = checkCidr('f', input);
        check(checkCidr('f', t.text).text === t.text, 'not canonical');
      } catch (err) {
        expectTyped(err, ['ERR_SOCK_IPSEC_INVALID_OPTION']);
      }
    },
  );
  fuzzIt(
    'ipsec/proposals',
    'a proposal passes only as safe tokens (or a typed error)',
    fc.array(fc.oneof(text, fc.constantFrom('aes256gcm16-prfsha384-ecp384', 'aes128-sha1-modp2048')), {
      maxLength: 3,
    }),
    (input) => {
      try {
        for (const p of checkProposals('f', input, false))
          check(!/sha1|md5|des|modp(1024|1536|2048)|null/.test(p), `accepted ${p}`);
      } catch (err) {
        expectTyped(err, ['ERR_SOCK_IPSEC_INVALID_OPTION', 'ERR_SOCK_IPSEC_INSECURE']);
      }
    },
  );
});
