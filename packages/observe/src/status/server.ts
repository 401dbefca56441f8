import { createHash, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import { SockError, SockErrorCode } from '@sock/core';
import type { SockMetrics } from '../collector.js';
import { createStatusBoard, type StatusBoardOptions } from './board.js';
import { STATUS_PAGE, STATUS_PAGE_CSP } from './page.js';

export interface StatusServerOptions extends StatusBoardOptions {
  /** Address to bind. Default `127.0.0.1`. Anything but loopback needs `allowRemote`. */
  host?: string;
  /** Port; 0 (default) picks a free one. */
  port?: number;
  /**
   * Serve on a non-loopback address. The page names attacking addresses and your limits: expose it
   * only behind your own access control, and set `token`.
   */
  allowRemote?: boolean;
  /** Require `Authorization: Bearer <token>` for the data (compared in constant time). */
  token?: string;
  signal?: AbortSignal;
}

export interface StatusServer {
  /** The page's URL (with `#token=…` when a token is set, so it can be opened as is). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Is this address loopback (127.0.0.0/8, ::1, IPv4-mapped loopback, `localhost`)? */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Serve the live status page at `/` and its data at `/status.json` (GET and HEAD). Bound to loopback
 * unless `allowRemote`; with a token, `/status.json` answers 401 without `Authorization: Bearer <token>`.
 * On loopback without a token, requests whose Host header is not a loopback name are refused (403) so a
 * web page elsewhere cannot read it through DNS rebinding.
 */
export async function serveStatus(
  metrics: SockMetrics,
  options: StatusServerOptions = {},
): Promise<StatusServer> {
  const host = options.host ?? '127.0.0.1';
  if (!options.allowRemote && !isLoopback(host)) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `serveStatus: ${host} is not a loopback address; the status page names attackers and limits, so it binds to loopback unless allowRemote is set (set a token too)`,
    );
  }
  if (options.token !== undefined && options.token.length < 16) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      'serveStatus: token must be at least 16 characters; generate one with `openssl rand -hex 16`',
    );
  }
  const expected = options.token === undefined ? undefined : digest(options.token);
  const board = createStatusBoard(metrics, options);
  const authorized = (req: IncomingMessage): boolean => {
    if (!expected) return true;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    // Hashing first gives equal lengths, so timingSafeEqual compares in constant time.
    return m !== null && timingSafeEqual(digest(m[1]!), expected);
  };
  const hostAllowed = (req: IncomingMessage): boolean => {
    if (expected || options.allowRemote) return true;
    const h = (req.headers.host ?? '').replace(/:\d+$/, '');
    return isLoopback(h);
  };
  const send = (
    res: ServerResponse,
    req: IncomingMessage,
    status: number,
    type: string,
    body: string,
    extra = {},
  ) => {
    res.writeHead(status, {
      'content-type': type,
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      ...extra,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  const http = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, req, 405, 'text/plain; charset=utf-8', 'use GET or HEAD\n', { allow: 'GET, HEAD' });
      return;
    }
    if (!hostAllowed(req)) {
      send(
        res,
        req,
        403,
        'text/plain; charset=utf-8',
        'forbidden: open the page through a loopback address\n',
      );
      return;
    }
    if (path === '/') {
      send(res, req, 200, 'text/html; charset=utf-8', STATUS_PAGE, {
        'content-security-policy': STATUS_PAGE_CSP,
      });
      return;
    }
    if (path === '/favicon.ico') {
      res.writeHead(204, { 'cache-control': 'max-age=86400' }).end();
      return;
    }
    if (path === '/status.json') {
      if (!authorized(req)) {
        send(res, req, 401, 'application/json', '{"error":"unauthorized"}\n', {
          'www-authenticate': 'Bearer',
        });
        return;
      }
      board.report().then(
        (report) => send(res, req, 200, 'application/json', JSON.stringify(report)),
        (err: Error) => send(res, req, 500, 'application/json', JSON.stringify({ error: err.message })),
      );
      return;
    }
    send(
      res,
      req,
      404,
      'text/plain; charset=utf-8',
      'not found: the page is at /, its data at /status.json\n',
    );
  });
  http.listen(options.port ?? 0, host);
  try {
    await once(http, 'listening');
  } catch (err) {
    board.close();
    throw new SockError(
      SockErrorCode.SOCKET_ERROR,
      `serveStatus: cannot listen on ${host}:${options.port ?? 0}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const a = http.address() as AddressInfo;
  const shown = a.address.includes(':') ? `[${a.address}]` : a.address;
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= new Promise<void>((resolve) => {
      board.close();
      http.closeAllConnections();
      http.close(() => resolve());
    });
    return closed;
  };
  options.signal?.addEventListener('abort', () => void close(), { once: true });
  return {
    url: `http://${shown}:${a.port}/${options.token ? `#token=${encodeURIComponent(options.token)}` : ''}`,
    host: a.address,
    port: a.port,
    close,
  };
}
