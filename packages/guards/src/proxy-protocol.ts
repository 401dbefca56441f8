import { isIPv4, isIPv6 } from 'node:net';
import { SockError, SockErrorCode } from '@sock/core';
import { canonicalAddress, formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './ip.js';

/** The 12-byte signature that opens every PROXY protocol v2 header. */
export const PROXY_V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** A v1 header, CRLF included, is never longer than this (HAProxy spec; CVE-2024-35175). */
const PROXY_V1_MAX = 107;

export interface ProxyAddress {
  readonly address: string;
  readonly port: number;
}

export type ProxyHeader =
  | { readonly status: 'incomplete' }
  | { readonly status: 'invalid'; readonly message: string }
  | {
      readonly status: 'done';
      readonly version: 1 | 2;
      /** Bytes the header occupies; what follows is the client's stream. */
      readonly length: number;
      /** `local` (health check by the proxy itself) or `proxy`. */
      readonly command: 'local' | 'proxy';
      /** The client as the proxy saw it; absent for LOCAL, UNKNOWN, unspecified or UNIX families. */
      readonly source?: ProxyAddress;
      readonly destination?: ProxyAddress;
    };

/**
 * Parse a PROXY protocol v1 or v2 header at the start of `buf`. Pure and total: any bytes give
 * `incomplete` (need more), `invalid` (with why) or `done`. Never reads past `maxBytes`.
 */
export function parseProxyHeader(buf: Buffer, maxBytes = 536): ProxyHeader {
  if (buf.length === 0) return { status: 'incomplete' };
  if (buf[0] === 0x0d) return parseV2(buf, maxBytes);
  if (buf[0] === 0x50) return parseV1(buf);
  return { status: 'invalid', message: 'no PROXY protocol header' };
}

function startsLike(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length);
  return buf.subarray(0, n).equals(prefix.subarray(0, n));
}

function parseV1(buf: Buffer): ProxyHeader {
  if (!startsLike(buf, V1_PREFIX)) return { status: 'invalid', message: 'no PROXY protocol header' };
  // The CR must sit at index PROXY_V1_MAX - 2 at the latest.
  const limit = Math.min(buf.length, PROXY_V1_MAX - 1);
  let end = -1;
  for (let i = V1_PREFIX.length; i < limit; i++) {
    const c = buf[i]!;
    if (c === 0x0d) {
      if (i + 1 >= buf.length) return { status: 'incomplete' };
      if (buf[i + 1] !== 0x0a) return { status: 'invalid', message: 'v1 header: CR not followed by LF' };
      end = i;
      break;
    }
    if (c < 0x20 || c > 0x7e) return { status: 'invalid', message: 'v1 header: unexpected byte' };
  }
  if (end < 0) {
    return buf.length >= PROXY_V1_MAX - 1
      ? { status: 'invalid', message: `v1 header longer than ${PROXY_V1_MAX} bytes` }
      : { status: 'incomplete' };
  }
  const parts = buf.toString('latin1', V1_PREFIX.length, end).split(' ');
  const length = end + 2;
  if (parts[0] === 'UNKNOWN') return { status: 'done', version: 1, length, command: 'proxy' };
  if (parts.length !== 5)
    return { status: 'invalid', message: 'v1 header: expected protocol, 2 addresses, 2 ports' };
  const [proto, src, dst, sport, dport] = parts as [string, string, string, string, string];
  const valid = proto === 'TCP4' ? isIPv4 : proto === 'TCP6' ? isIPv6 : undefined;
  if (!valid)
    return {
      status: 'invalid',
      message: `v1 header: unknown protocol ${JSON.stringify(proto.slice(0, 16))}`,
    };
  if (!valid(src) || !valid(dst)) return { status: 'invalid', message: `v1 header: bad ${proto} address` };
  const sp = port(sport);
  const dp = port(dport);
  if (sp < 0 || dp < 0) return { status: 'invalid', message: 'v1 header: bad port' };
  return {
    status: 'done',
    version: 1,
    length,
    command: 'proxy',
    // Canonical, IPv4-mapped written as IPv4 (the key and every report see one spelling).
    source: { address: canonicalAddress(src) ?? src, port: sp },
    destination: { address: canonicalAddress(dst) ?? dst, port: dp },
  };
}

function port(text: string): number {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return -1;
  const n = Number(text);
  return n <= 65535 ? n : -1;
}

function parseV2(buf: Buffer, maxBytes: number): ProxyHeader {
  if (!startsLike(buf, PROXY_V2_SIGNATURE)) return { status: 'invalid', message: 'no PROXY protocol header' };
  if (buf.length < 16) return { status: 'incomplete' };
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return { status: 'invalid', message: `v2 header: version ${verCmd >> 4}` };
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return { status: 'invalid', message: `v2 header: unknown command ${cmd}` };
  const famProto = buf[13]!;
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  if (family > 3 || transport > 2)
    return { status: 'invalid', message: 'v2 header: unknown address family or protocol' };
  const length = 16 + buf.readUInt16BE(14);
  if (length > maxBytes)
    return { status: 'invalid', message: `v2 header of ${length} bytes exceeds ${maxBytes}` };
  if (buf.length < length) return { status: 'incomplete' };
  if (cmd === 0) return { status: 'done', version: 2, length, command: 'local' };
  const body = buf.subarray(16, length);
  if (family === 1) {
    if (body.length < 12) return { status: 'invalid', message: 'v2 header: short IPv4 address block' };
    return {
      status: 'done',
      version: 2,
      length,
      command: 'proxy',
      source: { address: formatIPv4(body.readUInt32BE(0)), port: body.readUInt16BE(8) },
      destination: { address: formatIPv4(body.readUInt32BE(4)), port: body.readUInt16BE(10) },
    };
  }
  if (family === 2) {
    if (body.length < 36) return { status: 'invalid', message: 'v2 header: short IPv6 address block' };
    const words = (at: number) => [0, 4, 8, 12].map((o) => body.readUInt32BE(at + o));
    return {
      status: 'done',
      version: 2,
      length,
      command: 'proxy',
      // An IPv4-mapped source (`::ffff:192.0.2.7`) is the IPv4 client it names.
      source: { address: canonicalAddress(formatIPv6(words(0)))!, port: body.readUInt16BE(32) },
      destination: { address: canonicalAddress(formatIPv6(words(16)))!, port: body.readUInt16BE(34) },
    };
  }
  // UNSPEC or UNIX: the connection's own address stands.
  return { status: 'done', version: 2, length, command: 'proxy' };
}

/** Build a v1 header (for tests and clients behind no real proxy). */
export function proxyV1Header(source: ProxyAddress, destination: ProxyAddress): Buffer {
  const proto = isIPv6(source.address) ? 'TCP6' : 'TCP4';
  return Buffer.from(
    `PROXY ${proto} ${source.address} ${destination.address} ${source.port} ${destination.port}\r\n`,
    'latin1',
  );
}

/** Build a v2 header; `undefined` addresses give a LOCAL command. */
export function proxyV2Header(source?: ProxyAddress, destination?: ProxyAddress): Buffer {
  if (!source || !destination) return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x20, 0x00, 0, 0])]);
  const v6 = isIPv6(source.address);
  const block = Buffer.alloc(v6 ? 36 : 12);
  const put = (addr: string, at: number) => {
    if (!v6) {
      block.writeUInt32BE(parseIPv4(addr) >>> 0, at);
      return;
    }
    const words = new Uint32Array(4);
    ipv6Words(addr, words);
    for (let i = 0; i < 4; i++) block.writeUInt32BE(words[i]!, at + i * 4);
  };
  put(source.address, 0);
  put(destination.address, v6 ? 16 : 4);
  block.writeUInt16BE(source.port, v6 ? 32 : 8);
  block.writeUInt16BE(destination.port, v6 ? 34 : 10);
  const head = Buffer.from([0x21, v6 ? 0x21 : 0x11, 0, 0]);
  head.writeUInt16BE(block.length, 2);
  return Buffer.concat([PROXY_V2_SIGNATURE, head, block]);
}

function ipv6Words(addr: string, out: Uint32Array): void {
  if (!parseIPv6(addr, out)) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `PROXY header: not an IPv6 address: ${JSON.stringify(addr)}`,
    );
  }
}
