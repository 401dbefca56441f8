/** A u32 big-endian length-prefixed frame, as `lengthPrefixed()` writes it: for raw test clients. */
export function u32(payload: Buffer | string): Buffer {
  const p = Buffer.from(payload);
  const h = Buffer.alloc(4);
  h.writeUInt32BE(p.length);
  return Buffer.concat([h, p]);
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
