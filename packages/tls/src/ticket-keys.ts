import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import { parseDuration, SockError, SockErrorCode } from '@sock/core';

/** Session ticket settings of `tlsTransport`. */
export interface SessionTicketOptions {
  /** Make a new ticket key this often; the previous one still decrypts until the next. Default 12 h. */
  rotate?: number | string;
  /**
   * Share the keys across node:cluster workers, so a ticket one worker issued resumes on any other. The
   * primary must call `shareTicketKeys()`; it owns the keys and their rotation (`rotate` is ignored
   * here). Until its keys arrive a worker uses keys of its own. Default false.
   */
  cluster?: boolean;
}

/** One ticket key: 16-byte name (sent in the ticket), HMAC-SHA256 key, AES-128-CBC key. */
interface TicketKey {
  readonly name: Buffer;
  readonly hmac: Buffer;
  readonly aes: Buffer;
}

const MESSAGE = 'sock.tls.ticket-keys';
const DEFAULT_ROTATE_MS = 12 * 3_600_000;

interface KeysMessage {
  readonly type: typeof MESSAGE;
  readonly op: 'get' | 'keys';
  readonly keys?: readonly string[];
}

function newKey(): TicketKey {
  return { name: randomBytes(16), hmac: randomBytes(32), aes: randomBytes(16) };
}

function encode(k: TicketKey): string {
  return Buffer.concat([k.name, k.hmac, k.aes]).toString('base64');
}

function decode(s: string): TicketKey | undefined {
  const b = Buffer.from(s, 'base64');
  if (b.length !== 64) return undefined;
  return { name: b.subarray(0, 16), hmac: b.subarray(16, 48), aes: b.subarray(48, 64) };
}

function isKeysMessage(m: unknown): m is KeysMessage {
  return typeof m === 'object' && m !== null && (m as KeysMessage).type === MESSAGE;
}

/** The native half of Node's ticket key callback (`SecureContext::TicketKeyCallback`). */
interface NativeContext {
  enableTicketKeyCallback(): void;
  onticketkeycallback?: (name: Buffer, iv: Buffer, enc: boolean) => unknown[];
}

/**
 * The ticket keys of one transport: the current key encrypts new tickets, the previous one only
 * decrypts (and asks OpenSSL to renew the ticket under the current key). Node's own `ticketKeys` keeps
 * one key and drops every ticket at rotation; its ticket key callback lets us keep two.
 */
export class TicketKeys {
  private current: TicketKey = newKey();
  private previous: TicketKey | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly onMessage: ((m: unknown) => void) | undefined;

  constructor(options: SessionTicketOptions) {
    const rotateMs = parseDuration(options.rotate ?? DEFAULT_ROTATE_MS, 'sessionTickets.rotate');
    if (rotateMs < 1000) {
      throw new SockError(SockErrorCode.INVALID_OPTION, 'sessionTickets.rotate must be at least 1 s');
    }
    if (options.cluster && cluster.isWorker && process.send) {
      this.onMessage = (m: unknown) => {
        if (isKeysMessage(m) && m.op === 'keys' && m.keys) this.install(m.keys);
      };
      process.on('message', this.onMessage);
      process.send({ type: MESSAGE, op: 'get' } satisfies KeysMessage);
    } else {
      this.timer = setInterval(() => this.rotate(), rotateMs);
      this.timer.unref();
    }
  }

  /** Make a new current key; the current one becomes the previous (decrypt only). */
  rotate(): void {
    this.previous = this.current;
    this.current = newKey();
  }

  /** Keys from the primary, current first. */
  private install(keys: readonly string[]): void {
    const [current, previous] = keys.map(decode);
    if (!current) return;
    this.current = current;
    this.previous = previous;
  }

  /** Answer OpenSSL: encrypt with the current key; decrypt with the key the ticket names. */
  callback = (name: Buffer, iv: Buffer, enc: boolean): unknown[] => {
    if (enc) {
      const k = this.current;
      return [1, k.hmac, k.aes, k.name, randomBytes(16)];
    }
    if (name.equals(this.current.name)) return [1, this.current.hmac, this.current.aes];
    if (this.previous && name.equals(this.previous.name)) {
      // 2: valid, but issue a new ticket under the current key.
      return [2, this.previous.hmac, this.previous.aes];
    }
    void iv;
    return [0, this.current.hmac, this.current.aes]; // unknown key: full handshake
  };

  /** Route a context's ticket encryption through these keys. */
  attach(context: SecureContext): void {
    const native = (context as unknown as { context: NativeContext }).context;
    native.onticketkeycallback = this.callback;
    native.enableTicketKeyCallback();
  }

  close(): void {
    clearInterval(this.timer);
    if (this.onMessage) process.off('message', this.onMessage);
  }
}

/** What `shareTicketKeys` returns: rotate now, or stop. */
export interface SharedTicketKeys {
  /** Make a new current key now (the previous one still decrypts) and send both to every connected worker. */
  rotate(): void;
  /** Stop rotating and stop answering workers' key requests; the workers keep the keys they have. */
  close(): void;
}

/**
 * In the node:cluster primary: own the session ticket keys of every worker whose transport has
 * `sessionTickets: { cluster: true }`, rotate them every `rotate` (default 12 h, previous kept for
 * decryption) and send them to the workers, so a ticket issued by one worker resumes on all.
 */
export function shareTicketKeys(options: { rotate?: number | string } = {}): SharedTicketKeys {
  if (!cluster.isPrimary) {
    throw new SockError(SockErrorCode.INVALID_OPTION, 'shareTicketKeys runs in the cluster primary');
  }
  const rotateMs = parseDuration(options.rotate ?? DEFAULT_ROTATE_MS, 'shareTicketKeys rotate');
  if (rotateMs < 1000) {
    throw new SockError(SockErrorCode.INVALID_OPTION, 'shareTicketKeys rotate must be at least 1 s');
  }
  let keys = [newKey()];
  const message = (): KeysMessage => ({ type: MESSAGE, op: 'keys', keys: keys.map(encode) });
  const onMessage = (worker: { send(m: unknown): boolean }, m: unknown) => {
    if (isKeysMessage(m) && m.op === 'get') worker.send(message());
  };
  cluster.on('message', onMessage);
  const rotate = () => {
    keys = [newKey(), keys[0]!];
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker?.isConnected()) worker.send(message());
    }
  };
  const timer = setInterval(rotate, rotateMs);
  timer.unref();
  return {
    rotate,
    close() {
      clearInterval(timer);
      cluster.off('message', onMessage);
    },
  };
}
