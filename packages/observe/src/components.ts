/**
 * The sock components the adapters read, by shape only (no import of @sock/guards, @sock/tls, …): each
 * exposes a synchronous `stats()` snapshot of plain numbers. Every field is optional here so that an
 * older component, or one without `stats()`, is read for what it has and skipped for the rest.
 */
export interface StatsSource<T> {
  stats?(): T;
}

/** `guards.stats()` (@sock/guards). */
export interface GuardsStats {
  keys?: number;
  maxKeys?: number;
  evictions?: number;
  strikes?: number;
  bansIssued?: number;
  bansActive?: number;
  banStoreFailures?: number;
  store?: {
    kind?: string;
    healthy?: boolean;
    fallbackDecisions?: number;
    errors?: number;
  };
}

/** What the status page reads from guards for active bans (`guards.snapshot()`). */
export interface GuardsBanSnapshot {
  bans?: { active?: ReadonlyArray<{ key: string; until: number; offences?: number }> };
}

export interface GuardsSource extends StatsSource<GuardsStats> {
  snapshot?(): GuardsBanSnapshot | Promise<GuardsBanSnapshot>;
}

/** The TLS server transport's `stats()` (@sock/tls). `notAfter` is ms since the epoch. */
export interface TlsStats {
  handshakes?: number;
  handshakeFailures?: number;
  reloads?: number;
  reloadFailures?: number;
  renegotiationAttempts?: number;
  certificates?: ReadonlyArray<{ subject: string; notAfter: number }>;
}

/** A UDP server's or endpoint's `stats()` (@sock/udp). */
export interface UdpStats {
  datagramsIn?: number;
  datagramsOut?: number;
  bytesIn?: number;
  bytesOut?: number;
  dropped?: number;
  amplificationRefusals?: number;
  unvalidated?: number;
}

/** The firewall ban bridge's `stats()` (@sock/firewall). */
export interface FirewallBridgeStats {
  batches?: number;
  applied?: number;
  failed?: number;
  pending?: number;
}

/** An SSH server's `stats()` (@sock/ssh). */
export interface SshStats {
  handshakes?: number;
  authFailures?: number;
  channelsOpen?: number;
  channelsTotal?: number;
}

/**
 * Every component a server may use; pass the ones you have. Each is any object: its `stats()`, when it
 * has one, is read for the fields of the shape named (`GuardsStats`, `TlsStats`, …); a field that is
 * missing or not a finite number is skipped, so a component from an older release costs nothing.
 */
export interface Components {
  /** `GuardsStats` from `stats()`; active bans from `snapshot()` (status page). */
  guards?: object;
  /** The TLS server transport: `TlsStats`. */
  tls?: object;
  /** A UDP server or socket: `UdpStats`. */
  udp?: object;
  /** The firewall ban bridge: `FirewallBridgeStats`. */
  firewall?: object;
  /** An SSH server: `SshStats`. */
  ssh?: object;
  /** @sock/ipsec: its numeric `stats()` fields are exported by field name (its shape is not fixed yet). */
  ipsec?: object;
}

/** The shape each component's `stats()` is read as. */
export interface ComponentStats {
  guards: GuardsStats;
  tls: TlsStats;
  udp: UdpStats;
  firewall: FirewallBridgeStats;
  ssh: SshStats;
  ipsec: Record<string, unknown>;
}

/** Read a component's stats, or undefined when it has none or they throw (counted by the caller). */
export function readStats<T>(source: object | undefined): T | undefined {
  const s = source as StatsSource<T> | undefined;
  if (!s || typeof s.stats !== 'function') return undefined;
  const value = s.stats();
  return typeof value === 'object' && value !== null ? value : undefined;
}

/** Guards' ban list for the status page, when it has `snapshot()`. */
export function guardsSource(guards: object | undefined): GuardsSource | undefined {
  return guards as GuardsSource | undefined;
}

/** A finite number, or undefined (a missing field is skipped rather than exported as 0). */
export function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
