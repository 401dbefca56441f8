/**
 * strongSwan's VICI wire format (src/libcharon/plugins/vici/README.md in strongSwan's tree), written by
 * hand because no maintained npm client exists. A packet is a 4-byte big-endian length (not counting
 * itself), a type byte, a name (1-byte length) for requests and events, then the message: a run of
 * elements. Decoding never recurses and never reads past the packet; encoding measures first and writes
 * into one buffer, so every byte is copied once.
 */
import { IpsecError, IpsecErrorCode } from './errors.js';

export const PacketType = {
  CMD_REQUEST: 0,
  CMD_RESPONSE: 1,
  CMD_UNKNOWN: 2,
  EVENT_REGISTER: 3,
  EVENT_UNREGISTER: 4,
  EVENT_CONFIRM: 5,
  EVENT_UNKNOWN: 6,
  EVENT: 7,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

const Element = {
  SECTION_START: 1,
  SECTION_END: 2,
  KEY_VALUE: 3,
  LIST_START: 4,
  LIST_ITEM: 5,
  LIST_END: 6,
} as const;

/** A value as sent: text (UTF-8) or raw bytes. Decoded values are always text. */
export type ViciValue = string | Uint8Array;
/** A VICI message (or section): keys to values, lists of values, or nested sections. */
export interface ViciMessage {
  [key: string]: ViciValue | ViciValue[] | ViciMessage;
}
/** A decoded message: plain data without a prototype (a key named `__proto__` is just a key). */
export interface DecodedMessage {
  [key: string]: string | string[] | DecodedMessage;
}

export interface Packet {
  type: PacketType;
  /** Command or event name (CMD_REQUEST, EVENT_REGISTER, EVENT_UNREGISTER, EVENT). */
  name?: string;
  /** The message (CMD_REQUEST, CMD_RESPONSE, EVENT). */
  message?: DecodedMessage;
}

export interface WireLimits {
  /** Largest packet accepted or sent, in bytes after the length prefix. */
  maxMessageBytes: number;
  /** Deepest nesting of sections (a list counts as one level). */
  maxDepth: number;
}

/** libvici's own cap on a packet is 512 KiB; a daemon that announces more is misbehaving. */
export const DEFAULT_LIMITS: WireLimits = { maxMessageBytes: 512 * 1024, maxDepth: 16 };

const named = (type: PacketType) =>
  type === PacketType.CMD_REQUEST ||
  type === PacketType.EVENT_REGISTER ||
  type === PacketType.EVENT_UNREGISTER ||
  type === PacketType.EVENT;
const withMessage = (type: PacketType) =>
  type === PacketType.CMD_REQUEST || type === PacketType.CMD_RESPONSE || type === PacketType.EVENT;

function encodeError(message: string): IpsecError {
  return new IpsecError(IpsecErrorCode.ENCODE, message);
}

function isSection(v: unknown): v is ViciMessage {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function byteLength(v: ViciValue): number {
  return typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.byteLength;
}

/** Bytes a message takes on the wire; throws ENCODE for what VICI cannot carry. */
function measure(message: ViciMessage, depth: number, limits: WireLimits): number {
  if (depth > limits.maxDepth) throw encodeError(`message nests deeper than maxDepth ${limits.maxDepth}`);
  let size = 0;
  for (const key of Object.keys(message)) {
    const keyBytes = Buffer.byteLength(key, 'utf8');
    if (keyBytes > 255) throw encodeError(`key ${JSON.stringify(key.slice(0, 40))}… is over 255 bytes`);
    const value = message[key]!;
    if (Array.isArray(value)) {
      size += 2 + keyBytes + 1;
      for (const item of value) {
        if (typeof item !== 'string' && !(item instanceof Uint8Array))
          throw encodeError(`list ${JSON.stringify(key)} may hold only strings or bytes`);
        const n = byteLength(item);
        if (n > 0xffff) throw encodeError(`a value in list ${JSON.stringify(key)} is over 65535 bytes`);
        size += 3 + n;
      }
    } else if (isSection(value)) {
      size += 2 + keyBytes + measure(value, depth + 1, limits) + 1;
    } else if (typeof value === 'string' || value instanceof Uint8Array) {
      const n = byteLength(value);
      if (n > 0xffff) throw encodeError(`value of ${JSON.stringify(key)} is over 65535 bytes`);
      size += 2 + keyBytes + 2 + n;
    } else {
      throw encodeError(`value of ${JSON.stringify(key)} must be a string, bytes, a list or a section`);
    }
  }
  return size;
}

class Writer {
  offset = 0;
  constructor(readonly buf: Buffer) {}
  u8(n: number): void {
    this.buf[this.offset++] = n;
  }
  name(s: string): void {
    const n = this.buf.write(s, this.offset + 1, 'utf8');
    this.buf[this.offset] = n;
    this.offset += 1 + n;
  }
  value(v: ViciValue): void {
    let n: number;
    if (typeof v === 'string') n = this.buf.write(v, this.offset + 2, 'utf8');
    else {
      this.buf.set(v, this.offset + 2);
      n = v.byteLength;
    }
    this.buf.writeUInt16BE(n, this.offset);
    this.offset += 2 + n;
  }
  message(m: ViciMessage): void {
    for (const key of Object.keys(m)) {
      const value = m[key]!;
      if (Array.isArray(value)) {
        this.u8(Element.LIST_START);
        this.name(key);
        for (const item of value) {
          this.u8(Element.LIST_ITEM);
          this.value(item);
        }
        this.u8(Element.LIST_END);
      } else if (isSection(value)) {
        this.u8(Element.SECTION_START);
        this.name(key);
        this.message(value);
        this.u8(Element.SECTION_END);
      } else {
        this.u8(Element.KEY_VALUE);
        this.name(key);
        this.value(value);
      }
    }
  }
}

/** One packet, length prefix included, ready for `socket.write`. */
export function encodePacket(
  type: PacketType,
  name: string | undefined,
  message: ViciMessage | undefined,
  limits: WireLimits = DEFAULT_LIMITS,
): Buffer {
  let size = 1;
  if (named(type)) {
    if (name === undefined) throw encodeError(`packet type ${type} needs a name`);
    const n = Buffer.byteLength(name, 'utf8');
    if (n < 1 || n > 255) throw encodeError(`name ${JSON.stringify(name.slice(0, 40))} must be 1..255 bytes`);
    size += 1 + n;
  }
  if (withMessage(type) && message) size += measure(message, 1, limits);
  if (size > limits.maxMessageBytes)
    throw encodeError(`message of ${size} bytes exceeds maxMessageBytes ${limits.maxMessageBytes}`);
  const w = new Writer(Buffer.allocUnsafe(4 + size));
  w.buf.writeUInt32BE(size, 0);
  w.offset = 4;
  w.u8(type);
  if (named(type)) w.name(name!);
  if (withMessage(type) && message) w.message(message);
  return w.buf;
}

function protocolError(message: string): IpsecError {
  return new IpsecError(IpsecErrorCode.PROTOCOL, `malformed VICI packet from the daemon: ${message}`);
}

/** Decode one packet body (the bytes after the length prefix). Throws PROTOCOL or TOO_DEEP. */
export function decodePacket(body: Uint8Array, limits: WireLimits = DEFAULT_LIMITS): Packet {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (buf.length < 1) throw protocolError('empty packet');
  const type = buf[0]!;
  if (type > PacketType.EVENT) throw protocolError(`unknown packet type ${type}`);
  let offset = 1;
  const need = (n: number, what: string) => {
    if (offset + n > buf.length) throw protocolError(`truncated ${what}`);
  };
  const readName = (what: string): string => {
    need(1, what);
    const n = buf[offset]!;
    need(1 + n, what);
    const s = buf.toString('utf8', offset + 1, offset + 1 + n);
    offset += 1 + n;
    return s;
  };
  const readValue = (what: string): string => {
    need(2, what);
    const n = buf.readUInt16BE(offset);
    need(2 + n, what);
    const s = buf.toString('utf8', offset + 2, offset + 2 + n);
    offset += 2 + n;
    return s;
  };
  const packet: Packet = { type: type as PacketType };
  if (named(type as PacketType)) packet.name = readName('name');
  if (!withMessage(type as PacketType)) {
    if (offset !== buf.length) throw protocolError(`${buf.length - offset} trailing bytes`);
    return packet;
  }
  const root: DecodedMessage = Object.create(null);
  const stack: DecodedMessage[] = [root];
  while (offset < buf.length) {
    const element = buf[offset++]!;
    const current = stack[stack.length - 1]!;
    switch (element) {
      case Element.SECTION_START: {
        const key = readName('section name');
        if (stack.length >= limits.maxDepth)
          throw new IpsecError(
            IpsecErrorCode.TOO_DEEP,
            `VICI message from the daemon nests deeper than maxDepth ${limits.maxDepth}`,
          );
        const section: DecodedMessage = Object.create(null);
        current[key] = section;
        stack.push(section);
        break;
      }
      case Element.SECTION_END:
        if (stack.length === 1) throw protocolError('section end without a section');
        stack.pop();
        break;
      case Element.KEY_VALUE: {
        const key = readName('key');
        current[key] = readValue('value');
        break;
      }
      case Element.LIST_START: {
        const key = readName('list name');
        const list: string[] = [];
        for (;;) {
          need(1, 'list');
          const item = buf[offset++]!;
          if (item === Element.LIST_END) break;
          if (item !== Element.LIST_ITEM) throw protocolError(`element ${item} inside a list`);
          list.push(readValue('list item'));
        }
        current[key] = list;
        break;
      }
      default:
        throw protocolError(`unknown or misplaced element ${element}`);
    }
  }
  if (stack.length !== 1) throw protocolError(`${stack.length - 1} section(s) not closed`);
  packet.message = root;
  return packet;
}
