import { IpsecError, IpsecErrorCode } from './errors.js';
import { DEFAULT_LIMITS, decodePacket, type Packet, type WireLimits } from './vici-wire.js';

/**
 * Cuts a byte stream into VICI packets. The announced length is checked before a byte of the body is
 * kept, so a daemon (or anything else on the socket) announcing 4 GiB costs nothing; a body that arrives
 * in one chunk is decoded in place, one that arrives in pieces is joined once.
 */
export class PacketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private expected = -1;

  constructor(private readonly limits: WireLimits = DEFAULT_LIMITS) {}

  /** Bytes held waiting for the rest of a packet (never more than 4 + maxMessageBytes). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Feed a chunk; returns the complete packets it finished. Throws on the first violation. */
  push(chunk: Buffer): Packet[] {
    const packets: Packet[] = [];
    let data = chunk;
    while (data.length > 0) {
      if (this.expected < 0) {
        // Header: gather exactly 4 bytes (they may be split across chunks).
        const take = Math.min(4 - this.buffered, data.length);
        this.chunks.push(data.subarray(0, take));
        this.buffered += take;
        data = data.subarray(take);
        if (this.buffered < 4) break;
        const header = Buffer.concat(this.chunks, 4);
        this.chunks = [];
        this.buffered = 0;
        const length = header.readUInt32BE(0);
        if (length > this.limits.maxMessageBytes)
          throw new IpsecError(
            IpsecErrorCode.MESSAGE_TOO_LARGE,
            `the daemon announced a VICI packet of ${length} bytes, over maxMessageBytes ${this.limits.maxMessageBytes}; the connection was closed`,
          );
        if (length === 0) throw new IpsecError(IpsecErrorCode.PROTOCOL, 'malformed VICI packet: length 0');
        this.expected = length;
        continue;
      }
      const take = Math.min(this.expected - this.buffered, data.length);
      if (this.buffered === 0 && take === this.expected) {
        packets.push(decodePacket(data.subarray(0, take), this.limits));
      } else {
        this.chunks.push(data.subarray(0, take));
        this.buffered += take;
        if (this.buffered < this.expected) break;
        packets.push(decodePacket(Buffer.concat(this.chunks, this.expected), this.limits));
      }
      data = data.subarray(take);
      this.chunks = [];
      this.buffered = 0;
      this.expected = -1;
    }
    return packets;
  }
}
