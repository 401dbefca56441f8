import { formatIPv6, type IpTarget, parseTarget } from './address.js';
import type { Driver, DriverContext, ForeignChain } from './driver.js';
import { FirewallError, FirewallErrorCode } from './errors.js';
import {
  type BanElement,
  banSetOf,
  type Change,
  type KernelBan,
  type PortRule,
  type SetKind,
} from './model.js';
import { type Command, commandFailed, INPUT_FILE } from './runner.js';

/** One nft JSON command object (`{ add: { … } }` and friends). */
export type NftCommand = Record<string, unknown>;

const FAMILY = 'inet';
const MAX_BISECT = 50_000;
const BAN_SETS: readonly SetKind[] = ['ban4', 'ban6', 'net4', 'net6', 'net6p64'];
const P64_MASK = formatIPv6(((1n << 64n) - 1n) << 64n);

const SET_DEFS: Readonly<Record<SetKind, { type: string; flags: string[]; sized: boolean }>> = {
  ban4: { type: 'ipv4_addr', flags: ['timeout'], sized: true },
  ban6: { type: 'ipv6_addr', flags: ['timeout'], sized: true },
  net4: { type: 'ipv4_addr', flags: ['interval', 'timeout'], sized: false },
  net6: { type: 'ipv6_addr', flags: ['interval', 'timeout'], sized: false },
  net6p64: { type: 'ipv6_addr', flags: ['timeout'], sized: true },
  allow4: { type: 'ipv4_addr', flags: ['interval'], sized: false },
  allow6: { type: 'ipv6_addr', flags: ['interval'], sized: false },
};

function saddr(family: 4 | 6): Record<string, unknown> {
  return { payload: { protocol: family === 4 ? 'ip' : 'ip6', field: 'saddr' } };
}

function matchSet(family: 4 | 6, set: SetKind, masked = false): Record<string, unknown> {
  const left = masked ? { '&': [saddr(family), P64_MASK] } : saddr(family);
  return { match: { op: '==', left, right: `@${set}` } };
}

/** The nft value of a target: an address, or a prefix object for CIDRs (IPv6 /64 bans: their network address). */
function elementValue(target: IpTarget, set: SetKind): unknown {
  if (target.kind === 'address' || set === 'net6p64') return target.address;
  return { prefix: { addr: target.address, len: target.prefix } };
}

function fullElement(e: BanElement, set: SetKind): unknown {
  const elem: Record<string, unknown> = { val: elementValue(e.target, set) };
  if (e.timeoutSec !== null) elem.timeout = e.timeoutSec;
  if (e.comment) elem.comment = e.comment;
  return elem.timeout === undefined && elem.comment === undefined ? elem.val : { elem };
}

function groupBySet<T>(items: readonly T[], setOf: (item: T) => SetKind): Map<SetKind, T[]> {
  const out = new Map<SetKind, T[]>();
  for (const item of items) {
    const set = setOf(item);
    const list = out.get(set);
    if (list) list.push(item);
    else out.set(set, [item]);
  }
  return out;
}

/** Renders our nftables layout and changes as nft JSON. Pure: golden-tested. */
export class NftRenderer {
  constructor(
    readonly table: string,
    readonly priority = -10,
    readonly maxElements = 1_048_576,
  ) {}

  private ref(extra: Record<string, unknown>): Record<string, unknown> {
    return { family: FAMILY, table: this.table, ...extra };
  }

  private elements(verb: 'add' | 'delete', set: SetKind, elem: unknown[]): NftCommand {
    return { [verb]: { element: this.ref({ name: set, elem }) } };
  }

  private rule(chain: string, expr: unknown[]): NftCommand {
    return { add: { rule: this.ref({ chain, expr }) } };
  }

  /** Table, sets, base chains on input and forward, and the ban rules (allow set first). Idempotent. */
  structure(): NftCommand[] {
    const out: NftCommand[] = [{ add: { table: { family: FAMILY, name: this.table } } }];
    for (const [name, def] of Object.entries(SET_DEFS)) {
      out.push({
        add: {
          set: this.ref({
            name,
            type: def.type,
            flags: def.flags,
            ...(def.sized ? { size: this.maxElements } : {}),
          }),
        },
      });
    }
    for (const hook of ['input', 'forward']) {
      out.push({
        add: { chain: this.ref({ name: hook, type: 'filter', hook, prio: this.priority, policy: 'accept' }) },
      });
    }
    out.push({ add: { chain: this.ref({ name: 'bans' }) } }, { add: { chain: this.ref({ name: 'ports' }) } });
    for (const chain of ['input', 'forward', 'bans'])
      out.push({ flush: { chain: this.ref({ name: chain }) } });
    out.push(
      this.rule('input', [{ jump: { target: 'bans' } }]),
      this.rule('forward', [{ jump: { target: 'bans' } }]),
      this.rule('bans', [matchSet(4, 'allow4'), { accept: null }]),
      this.rule('bans', [matchSet(6, 'allow6'), { accept: null }]),
      this.rule('bans', [matchSet(4, 'ban4'), { drop: null }]),
      this.rule('bans', [matchSet(4, 'net4'), { drop: null }]),
      this.rule('bans', [matchSet(6, 'ban6'), { drop: null }]),
      this.rule('bans', [matchSet(6, 'net6p64', true), { drop: null }]),
      this.rule('bans', [matchSet(6, 'net6'), { drop: null }]),
      this.rule('bans', [{ jump: { target: 'ports' } }]),
    );
    return out;
  }

  /** Remove our table: `add` first so the `delete` never fails, in one transaction. */
  destroy(): NftCommand[] {
    return [
      { add: { table: { family: FAMILY, name: this.table } } },
      { delete: { table: { family: FAMILY, name: this.table } } },
    ];
  }

  private portRule(rule: PortRule): unknown[] {
    const expr: unknown[] = [];
    if (rule.from !== undefined) {
      const from = parseTarget(rule.from, { allowBroadPrefix: true });
      const right =
        from.kind === 'address' ? from.address : { prefix: { addr: from.address, len: from.prefix } };
      expr.push({ match: { op: '==', left: saddr(from.family), right } });
    }
    expr.push({
      match: { op: '==', left: { payload: { protocol: rule.protocol, field: 'dport' } }, right: rule.port },
    });
    expr.push(rule.action === 'allow' ? { accept: null } : { drop: null });
    return expr;
  }

  /** Render changes in order. Bans that may exist are added bare, deleted, re-added: their timeout refreshes. */
  changes(changes: readonly Change[]): NftCommand[] {
    const out: NftCommand[] = [];
    for (const change of changes) {
      switch (change.type) {
        case 'ban':
        case 'replace-bans': {
          if (change.type === 'replace-bans') {
            for (const set of BAN_SETS) out.push({ flush: { set: this.ref({ name: set }) } });
          }
          const bySet = groupBySet(change.elements, (e) => banSetOf(e.target));
          for (const [set, elems] of bySet) {
            const refresh = change.type === 'ban' ? elems.filter((e) => e.refresh) : [];
            if (refresh.length > 0) {
              const bare = refresh.map((e) => elementValue(e.target, set));
              out.push(this.elements('add', set, bare), this.elements('delete', set, bare));
            }
            out.push(
              this.elements(
                'add',
                set,
                elems.map((e) => fullElement(e, set)),
              ),
            );
          }
          break;
        }
        case 'unban': {
          for (const [set, targets] of groupBySet(change.targets, banSetOf)) {
            const bare = targets.map((t) => elementValue(t, set));
            out.push(this.elements('add', set, bare), this.elements('delete', set, bare));
          }
          break;
        }
        case 'set-allow': {
          out.push(
            { flush: { set: this.ref({ name: 'allow4' }) } },
            { flush: { set: this.ref({ name: 'allow6' }) } },
          );
          const byFamily = groupBySet(change.targets, (t) => (t.family === 4 ? 'allow4' : 'allow6'));
          for (const [set, targets] of byFamily) {
            out.push(
              this.elements(
                'add',
                set,
                targets.map((t) =>
                  t.kind === 'address' ? t.address : { prefix: { addr: t.address, len: t.prefix } },
                ),
              ),
            );
          }
          break;
        }
        case 'set-ports': {
          out.push({ flush: { chain: this.ref({ name: 'ports' }) } });
          const ordered = [
            ...change.rules.filter((r) => r.action === 'allow'),
            ...change.rules.filter((r) => r.action === 'deny'),
          ];
          for (const rule of ordered) out.push(this.rule('ports', this.portRule(rule)));
          break;
        }
      }
    }
    return out;
  }
}

/** Parse `nft -j list chains`: other tables' base chains on the input hook whose policy is drop. */
function parseInputDrops(json: string, ownTable: string): ForeignChain[] {
  const doc = JSON.parse(json) as { nftables?: unknown[] };
  const out: ForeignChain[] = [];
  for (const item of doc.nftables ?? []) {
    const c = (item as { chain?: Record<string, unknown> }).chain;
    if (c?.hook !== 'input' || c.policy !== 'drop') continue;
    const family = String(c.family);
    if (!['inet', 'ip', 'ip6'].includes(family)) continue;
    if (family === FAMILY && c.table === ownTable) continue;
    out.push({
      family,
      table: String(c.table),
      chain: String(c.name),
      hook: 'input',
      priority: Number(c.prio ?? 0),
    });
  }
  return out;
}

/** Parse `nft -j list table inet <table>` into our bans. Unknown shapes are skipped. */
export function parseNftList(json: string): KernelBan[] {
  const doc = JSON.parse(json) as { nftables?: unknown[] };
  const out: KernelBan[] = [];
  for (const item of doc.nftables ?? []) {
    const set = (item as { set?: { name?: string; elem?: unknown[] } }).set;
    if (!set || !BAN_SETS.includes(set.name as SetKind)) continue;
    for (const raw of set.elem ?? []) {
      const wrapped = (raw as { elem?: Record<string, unknown> }).elem;
      const val = wrapped ? wrapped.val : raw;
      let text: string | undefined;
      if (typeof val === 'string') text = set.name === 'net6p64' ? `${val}/64` : val;
      else if (val && typeof val === 'object' && 'prefix' in val) {
        const p = (val as { prefix: { addr: string; len: number } }).prefix;
        text = `${p.addr}/${p.len}`;
      }
      if (text === undefined) continue;
      let target: IpTarget;
      try {
        target = parseTarget(text, { allowBroadPrefix: true });
      } catch {
        continue;
      }
      const expires = wrapped?.expires;
      const comment = wrapped?.comment;
      out.push({
        target,
        expiresSec: typeof expires === 'number' ? expires : null,
        ...(typeof comment === 'string' ? { comment } : {}),
      });
    }
  }
  return out;
}

function nftCommand(doc: NftCommand[], check = false): Command {
  return {
    bin: 'nft',
    args: check ? ['-c', '-j', '-f', INPUT_FILE] : ['-j', '-f', INPUT_FILE],
    input: JSON.stringify({ nftables: doc }),
  };
}

/** Split element commands into one element each, so a failing element can be found. */
function explode(doc: NftCommand[]): NftCommand[] {
  const out: NftCommand[] = [];
  for (const cmd of doc) {
    const [verb, body] = Object.entries(cmd)[0] as [string, Record<string, unknown>];
    const element = body.element as { elem: unknown[] } | undefined;
    if (!element || element.elem.length <= 1) {
      out.push(cmd);
      continue;
    }
    for (const e of element.elem) out.push({ [verb]: { element: { ...element, elem: [e] } } });
  }
  return out;
}

function valueText(raw: unknown): string {
  const val = (raw as { elem?: { val?: unknown } }).elem?.val ?? raw;
  if (typeof val === 'string') return val;
  const prefix = (val as { prefix?: { addr: string; len: number } }).prefix;
  return prefix ? `${prefix.addr}/${prefix.len}` : JSON.stringify(val);
}

function describe(cmd: NftCommand): string {
  const [verb, body] = Object.entries(cmd)[0] as [string, Record<string, unknown>];
  const element = body.element as { name: string; elem: unknown[] } | undefined;
  if (element) return `${verb} element ${valueText(element.elem[0])} in set ${element.name}`;
  return `${verb} ${JSON.stringify(body)}`;
}

/** The nftables driver: one `nft -j -f <0600 file>` per transaction. */
export function createNftDriver(ctx: DriverContext): Driver {
  const render = new NftRenderer(ctx.table, ctx.priority, ctx.maxElements);

  /** Binary search with `nft -c` for the first command of a failed batch that the kernel refuses. */
  async function findCulprit(doc: NftCommand[], signal?: AbortSignal): Promise<string | undefined> {
    const flat = explode(doc);
    if (flat.length < 2) return flat[0] ? describe(flat[0]) : undefined;
    // Each probe re-sends a prefix of the batch; beyond this size the search costs more than it tells.
    if (flat.length > MAX_BISECT) return undefined;
    let lo = 1;
    let hi = flat.length;
    const first = await ctx.runner.run(nftCommand(flat, true), signal ? { signal } : {});
    if (first.exitCode === 0) return undefined;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const r = await ctx.runner.run(nftCommand(flat.slice(0, mid), true), signal ? { signal } : {});
      if (r.exitCode === 0) lo = mid + 1;
      else hi = mid;
    }
    const culprit = flat[lo - 1];
    return culprit ? describe(culprit) : undefined;
  }

  async function run(doc: NftCommand[], signal?: AbortSignal): Promise<Command[]> {
    const command = nftCommand(doc);
    if (ctx.dry) return [command];
    const result = await ctx.runner.run(command, signal ? { signal } : {});
    if (result.exitCode !== 0) {
      let extra = '';
      try {
        const culprit = await findCulprit(doc, signal);
        if (culprit) extra = ` (first failing operation: ${culprit})`;
      } catch {
        // diagnosis is best effort; the original failure is what we report
      }
      throw commandFailed(
        command,
        result,
        extra,
        'the transaction is atomic, so nothing of it was applied; fix or drop that operation and retry',
      );
    }
    return [command];
  }

  return {
    name: 'nftables',
    init: (changes, signal) => run([...render.structure(), ...render.changes(changes)], signal),
    apply: (changes, signal) =>
      changes.length === 0 ? Promise.resolve([]) : run(render.changes(changes), signal),
    destroy: (signal) => run(render.destroy(), signal),
    async inputDrops(signal) {
      if (ctx.dry) return [];
      const command: Command = { bin: 'nft', args: ['-j', 'list', 'chains'], query: true };
      const result = await ctx.runner.run(command, signal ? { signal } : {});
      if (result.exitCode !== 0) throw commandFailed(command, result);
      return parseInputDrops(result.stdout, ctx.table);
    },
    async list(signal) {
      if (ctx.dry) return [];
      const command: Command = { bin: 'nft', args: ['-j', 'list', 'table', FAMILY, ctx.table], query: true };
      const result = await ctx.runner.run(command, signal ? { signal } : {});
      if (result.exitCode !== 0) {
        if (/no such file or directory/i.test(result.stderr)) return [];
        throw commandFailed(command, result);
      }
      try {
        return parseNftList(result.stdout);
      } catch (cause) {
        throw new FirewallError(
          FirewallErrorCode.COMMAND_FAILED,
          'nft -j list printed output that is not JSON; check the nft version (1.0+ is supported)',
          { cause },
        );
      }
    },
  };
}
