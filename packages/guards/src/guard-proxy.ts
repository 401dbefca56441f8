import type { Socket } from 'node:net';
import type { ConnectionControl, PeerAddress, Rejection } from '@sock/core';
import { unrefTimer } from '@sock/core/internal';
import type { CidrMatcher } from './cidr-matcher.js';
import { createCidrMatcher } from './cidr-matcher.js';
import type { GuardContext } from './guard-context.js';
import { type Checker, describe, type ResolvedPolicy } from './policy.js';
import { parseProxyHeader } from './proxy-protocol.js';
import { GuardReason } from './reasons.js';

export function trustedMatcher(policy: ResolvedPolicy): CidrMatcher<true> {
  return createCidrMatcher((policy.proxy?.trusted ?? []).map((cidr) => ({ cidr, value: true as const })));
}

/**
 * @internal The PROXY protocol preface (section `proxy`): read a v1/v2 header from a trusted proxy within
 * its deadline and name the real client. Preface rejections reach no violation hook (accept was not
 * entered), so they are counted and struck here, and only an untrusted peer with a real address is struck:
 * a trusted proxy relaying a broken client, or health-checking (connect, reset before any header), never
 * earns a strike, and a peer whose address is already gone (reset) is keyed by nothing.
 */
export class ProxyPreface {
  private trusted: CidrMatcher<true>;

  constructor(private readonly ctx: GuardContext) {
    this.trusted = trustedMatcher(ctx.policy);
  }

  /** Apply a reloaded policy's `proxy.trusted`. */
  swap(trusted: CidrMatcher<true>): void {
    this.trusted = trusted;
  }

  preface(socket: Socket, conn: ConnectionControl): Promise<PeerAddress | Rejection | undefined> {
    const proxy = this.ctx.policy.proxy;
    if (!proxy || (proxy.ports && !proxy.ports.includes(conn.localPort))) return Promise.resolve(undefined);
    const peer = conn.socketAddress || socket.remoteAddress || '';
    const key = this.ctx.keyOf(peer);
    const fail = (reason: string, message: string): Rejection => {
      const r: Rejection =
        key === undefined
          ? { reason, message: `proxy: ${message}` }
          : { reason, key, message: `proxy: ${message}` };
      this.ctx.count(r, true);
      if (reason === GuardReason.PROXY_UNTRUSTED && key !== undefined)
        void this.ctx.bans.strike(peer, reason);
      return r;
    };
    // A peer reset before we looked has no address: nothing to trust, nobody to strike.
    if (key === undefined)
      return Promise.resolve(fail(GuardReason.PROXY_INVALID, 'peer gone before its address was known'));
    if (!this.trusted.lookup(peer)) {
      return Promise.resolve(fail(GuardReason.PROXY_UNTRUSTED, `${peer} is not a trusted proxy`));
    }
    return new Promise((resolve) => {
      let buffered: Buffer = Buffer.alloc(0);
      let done = false;
      const finish = (result: PeerAddress | Rejection | undefined) => {
        if (done) return;
        done = true;
        conn.clock.clearTimeout(timer);
        socket.pause();
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('close', onEnd);
        resolve(result);
      };
      const onData = (chunk: Buffer) => {
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        const header = parseProxyHeader(buffered, proxy.maxBytes);
        if (header.status === 'incomplete') {
          if (buffered.length >= proxy.maxBytes)
            finish(fail(GuardReason.PROXY_INVALID, `no complete header in ${proxy.maxBytes} bytes`));
          return;
        }
        if (header.status === 'invalid') {
          finish(fail(GuardReason.PROXY_INVALID, header.message));
          return;
        }
        finish(header.source ? { address: header.source.address, port: header.source.port } : undefined);
        // What followed the header is the client's stream: give it back, the socket stays paused.
        if (buffered.length > header.length) socket.unshift(buffered.subarray(header.length));
      };
      const onEnd = () => finish(fail(GuardReason.PROXY_INVALID, 'closed before a complete header'));
      const timer = conn.clock.setTimeout(
        () => finish(fail(GuardReason.PROXY_TIMEOUT, `no complete header within ${proxy.timeoutMs}ms`)),
        proxy.timeoutMs,
      );
      unrefTimer(timer);
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('close', onEnd);
      socket.resume();
    });
  }
}

/** The `proxy` section: off unless given. */
export function resolveProxy(c: Checker, input: unknown): ResolvedPolicy['proxy'] {
  if (input === undefined || input === false) return undefined;
  const p = c.section(input, ['proxy'], ['trusted', 'ports', 'timeout', 'maxBytes'] as const);
  if (p.trusted === undefined)
    c.fail(['proxy', 'trusted'], 'required: the CIDRs of your proxies (an empty list trusts nobody)');
  let ports: number[] | undefined;
  if (p.ports !== undefined) {
    if (!Array.isArray(p.ports))
      c.fail(['proxy', 'ports'], `expected an array of port numbers, got ${describe(p.ports)}`);
    else
      ports = p.ports.map((port, i) =>
        c.number(port, ['proxy', 'ports', i], 0, { min: 1, max: 65535, int: true }),
      );
  }
  return {
    trusted: c.cidrs(p.trusted, ['proxy', 'trusted']),
    ports,
    timeoutMs: c.duration(p.timeout, ['proxy', 'timeout'], 5000),
    maxBytes: c.number(p.maxBytes, ['proxy', 'maxBytes'], 536, { min: 108, max: 65_551, int: true }),
  };
}
