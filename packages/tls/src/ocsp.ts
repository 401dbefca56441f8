import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseDuration, SockError, SockErrorCode } from '@sock/core';

/** OCSP stapling for `tlsTransport`: a DER OCSP response for the default certificate. */
export interface OcspStaplingOptions {
  /** A DER OCSP response file (what `openssl ocsp -respout` writes), re-read at each refresh. */
  file?: string;
  /** Or a function that gets a fresh DER response (from your CA's responder). */
  fetch?: (options: { signal: AbortSignal }) => Promise<Uint8Array>;
  /** Refresh this long before the response's nextUpdate. Default 1 h. */
  refreshBefore?: number | string;
  /** Refresh this often when a response has no nextUpdate, and retry this soon after a failure. Default 1 h. */
  interval?: number | string;
  /** A refresh failed; the previous response (while still valid) is stapled meanwhile. */
  onError?: (error: SockError) => void;
}

interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

/** One DER TLV at `offset` (definite lengths only, as DER requires). */
function tlv(der: Uint8Array, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new Error('truncated');
  const tag = der[offset]!;
  let len = der[offset + 1]!;
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new Error('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  if (start + len > limit) throw new Error('truncated');
  return { tag, start, end: start + len };
}

function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const t = tlv(der, at, parent.end);
    out.push(t);
    at = t.end;
  }
  return out;
}

function generalizedTime(der: Uint8Array, t: Tlv): number {
  const s = Buffer.from(der.subarray(t.start, t.end)).toString('latin1');
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(s);
  if (!m) throw new Error(`bad time ${s}`);
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

/**
 * The status and validity window of a DER OCSP response (RFC 6960 §4.2.1), from its first
 * SingleResponse. Hand-written: no maintained OCSP parser ships for Node without pulling a second ASN.1
 * stack; this reads five fixed positions and rejects anything else.
 */
export function readOcspResponse(der: Uint8Array): {
  status: 'good' | 'revoked' | 'unknown';
  thisUpdate: number;
  nextUpdate: number | undefined;
} {
  try {
    const top = tlv(der, 0, der.length);
    const [statusEnum, bytes] = children(der, top);
    if (statusEnum?.tag !== 0x0a || der[statusEnum.start] !== 0) {
      throw new Error('the responder did not answer "successful"');
    }
    if (bytes?.tag !== 0xa0) throw new Error('no responseBytes');
    const [responseBytes] = children(der, bytes);
    const [, octets] = children(der, responseBytes!);
    const basic = tlv(der, octets!.start, octets!.end);
    const [tbs] = children(der, basic);
    const fields = children(der, tbs!);
    const responses = fields.find((f, i) => i > 0 && f.tag === 0x30 && fields[i - 1]!.tag === 0x18);
    if (!responses) throw new Error('no responses');
    const [single] = children(der, responses);
    const [, certStatus, thisUpdate, next] = children(der, single!);
    const status = certStatus!.tag === 0x80 ? 'good' : certStatus!.tag === 0xa1 ? 'revoked' : 'unknown';
    const nextUpdate = next?.tag === 0xa0 ? generalizedTime(der, tlv(der, next.start, next.end)) : undefined;
    return { status, thisUpdate: generalizedTime(der, thisUpdate!), nextUpdate };
  } catch (err) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `OCSP response does not parse: ${(err as Error).message}; give the DER response (openssl ocsp -respout)`,
      { cause: err, reason: 'tls-ocsp-invalid' },
    );
  }
}

/** Keeps a current OCSP response, refreshed before it expires. */
export class OcspStapler {
  private response: Buffer | undefined;
  private nextUpdate: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  private readonly refreshBeforeMs: number;
  private readonly intervalMs: number;
  private refreshes = 0;

  constructor(
    private readonly options: OcspStaplingOptions,
    private readonly now: () => number,
  ) {
    if ((options.file === undefined) === (options.fetch === undefined)) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        'tlsTransport ocsp: give exactly one of file or fetch',
      );
    }
    this.refreshBeforeMs = parseDuration(options.refreshBefore ?? 3_600_000, 'ocsp.refreshBefore');
    this.intervalMs = parseDuration(options.interval ?? 3_600_000, 'ocsp.interval');
    if (this.intervalMs < 1000) {
      throw new SockError(SockErrorCode.INVALID_OPTION, 'ocsp.interval must be at least 1 s');
    }
  }

  /**
   * Load the first response: a file synchronously (so the first connection gets it; an unreadable,
   * unparsable or expired file throws here), a fetch in the background (failures go to `onError`).
   */
  start(): void {
    if (this.options.file === undefined) {
      this.refresh().catch((err: SockError) => this.options.onError?.(err));
      return;
    }
    let der: Buffer;
    try {
      der = readFileSync(this.options.file);
    } catch (err) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `tlsTransport ocsp.file: cannot read ${this.options.file}: ${(err as Error).message}`,
        { cause: err, reason: 'tls-ocsp-failed' },
      );
    }
    this.install(der);
  }

  /** The response to staple now, or undefined (none, or expired). */
  current(): Buffer | undefined {
    if (this.nextUpdate !== undefined && this.now() >= this.nextUpdate) return undefined;
    return this.response;
  }

  /** How many responses were installed (for tests and metrics). */
  get installed(): number {
    return this.refreshes;
  }

  async refresh(): Promise<void> {
    clearTimeout(this.timer);
    try {
      const der = Buffer.from(
        this.options.file !== undefined
          ? await readFile(this.options.file)
          : await this.options.fetch!({ signal: this.abort.signal }),
      );
      this.install(der);
    } catch (err) {
      const error = SockError.isInstance(err)
        ? err
        : new SockError(SockErrorCode.INVALID_OPTION, `OCSP refresh failed: ${(err as Error).message}`, {
            cause: err,
            reason: 'tls-ocsp-failed',
          });
      this.schedule(this.intervalMs);
      throw error;
    }
  }

  private install(der: Buffer): void {
    const info = readOcspResponse(der);
    if (info.nextUpdate !== undefined && info.nextUpdate <= this.now()) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `the OCSP response expired at ${new Date(info.nextUpdate).toISOString()}; get a fresh one`,
        { reason: 'tls-ocsp-expired' },
      );
    }
    this.response = der;
    this.nextUpdate = info.nextUpdate;
    this.refreshes++;
    const due =
      info.nextUpdate === undefined
        ? this.intervalMs
        : Math.max(1000, info.nextUpdate - this.refreshBeforeMs - this.now());
    this.schedule(Math.min(due, 2 ** 31 - 1));
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (this.abort.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.refresh().catch((err: SockError) => this.options.onError?.(err));
    }, ms);
    this.timer.unref();
  }

  close(): void {
    this.abort.abort();
    clearTimeout(this.timer);
  }
}
