import type { IpFamily, IpTarget } from './address.js';
import { parseTarget } from './address.js';
import type { Driver, DriverContext } from './driver.js';
import { type BanElement, banSetOf, type Change, type KernelBan, type PortRule } from './model.js';
import { type Command, INPUT_FILE, runChecked } from './runner.js';

type IpsetKind = 'ban4' | 'ban6' | 'net4' | 'net6' | 'allow4' | 'allow6';

const BAN_KINDS: readonly IpsetKind[] = ['ban4', 'ban6', 'net4', 'net6'];
const ALL_KINDS: readonly IpsetKind[] = [...BAN_KINDS, 'allow4', 'allow6'];
const HOOKS = ['INPUT', 'FORWARD'] as const;

/** Where our jump sits in a hook chain: its first rule, further down, or absent. */
export type JumpState = 'first' | 'elsewhere' | 'missing';

/** Read `iptables -S <hook>` output: is `-A <hook> -j <chain>` the hook's first rule, later, or absent? */
export function jumpState(listing: string, hook: string, chain: string): JumpState {
  const rules = listing.split('\n').filter((l) => l.startsWith(`-A ${hook} `));
  const ours = `-A ${hook} -j ${chain}`;
  if (rules[0]?.trim() === ours) return 'first';
  return rules.some((l) => l.trim() === ours) ? 'elsewhere' : 'missing';
}

function kindOf(target: IpTarget): IpsetKind {
  const set = banSetOf(target);
  return set === 'net6p64' ? 'net6' : (set as IpsetKind);
}

/** Renders ipset restore files and iptables-restore files for our chain. Pure: golden-tested. */
export class IptablesRenderer {
  constructor(
    readonly prefix: string,
    readonly maxElements = 1_048_576,
  ) {}

  setName(kind: IpsetKind): string {
    return `${this.prefix}-${kind}`;
  }

  get chain(): string {
    return this.prefix;
  }

  /** Deny rules (DROP). */
  get portsChain(): string {
    return `${this.prefix}-ports`;
  }

  /**
   * What FORWARD jumps to: the allow set, bans and denied ports, but never an ACCEPT — an allowed port
   * opens this host, not forwarding to every host behind it.
   */
  get forwardChain(): string {
    return `${this.prefix}-fwd`;
  }

  /** The chain each hook jumps to. */
  entryChain(hook: (typeof HOOKS)[number]): string {
    return hook === 'INPUT' ? this.chain : this.forwardChain;
  }

  /** Allow rules (ACCEPT): reached by allowlisted sources too, so an allowed port is open to them. */
  get openChain(): string {
    return `${this.prefix}-open`;
  }

  /** `create` lines for every set (ipset -exist keeps existing ones). */
  createSets(): string[] {
    return ALL_KINDS.map((kind) => {
      const type = kind.startsWith('ban') ? 'hash:ip' : 'hash:net';
      const family = kind.endsWith('4') ? 'inet' : 'inet6';
      const timeout = kind.startsWith('allow') ? '' : ' timeout 0 comment';
      return `create ${this.setName(kind)} ${type} family ${family} hashsize 1024 maxelem ${this.maxElements}${timeout}`;
    });
  }

  private add(e: BanElement): string {
    const timeout = ` timeout ${e.timeoutSec ?? 0}`;
    // Comments are sanitised to [A-Za-z0-9 _.,:/@=+-]: no quote or newline can end the token early.
    const comment = e.comment ? ` comment "${e.comment}"` : '';
    return `add ${this.setName(kindOf(e.target))} ${e.target.text}${timeout}${comment}`;
  }

  /** ipset restore lines for the set changes (bans, unbans, replace, allow); port changes are ignored here. */
  ipsetLines(changes: readonly Change[]): string[] {
    const out: string[] = [];
    for (const change of changes) {
      switch (change.type) {
        case 'ban':
          for (const e of change.elements) out.push(this.add(e));
          break;
        case 'replace-bans':
          for (const kind of BAN_KINDS) out.push(`flush ${this.setName(kind)}`);
          for (const e of change.elements) out.push(this.add(e));
          break;
        case 'unban':
          for (const t of change.targets) out.push(`del ${this.setName(kindOf(t))} ${t.text}`);
          break;
        case 'set-allow':
          out.push(`flush ${this.setName('allow4')}`, `flush ${this.setName('allow6')}`);
          for (const t of change.targets) {
            out.push(`add ${this.setName(t.family === 4 ? 'allow4' : 'allow6')} ${t.text}`);
          }
          break;
        case 'set-ports':
          break;
      }
    }
    return out;
  }

  private portRule(rule: PortRule, family: IpFamily): string | undefined {
    let source = '';
    if (rule.from !== undefined) {
      const from = parseTarget(rule.from, { allowBroadPrefix: true });
      if (from.family !== family) return undefined;
      source = ` -s ${from.text}`;
    }
    // An allow is a real ACCEPT: our chain is jumped to first from INPUT, so it opens the port even on a
    // host whose own rules drop by default (as fail2ban and ufw do); bans come before it in our chain.
    const chain = rule.action === 'allow' ? this.openChain : this.portsChain;
    const verdict = rule.action === 'allow' ? 'ACCEPT' : 'DROP';
    return `-A ${chain}${source} -p ${rule.protocol} -m ${rule.protocol} --dport ${rule.port} -j ${verdict}`;
  }

  /**
   * A complete iptables-restore --noflush file for one family: our chains rebuilt — the allow set first
   * (its sources may still use allowed ports, then leave our chain: no ban or deny of ours applies to
   * them), then bans, then allowed ports (ACCEPT), then denied ports (DROP) — plus the jumps from
   * INPUT/FORWARD: `jumps` says per hook whether ours is already first, elsewhere (moved to the top),
   * or missing (inserted at the top); `staleForward` removes FORWARD's jump to the INPUT chain (the
   * layout before FORWARD had its own chain).
   */
  restoreFile(
    family: IpFamily,
    rules: readonly PortRule[],
    jumps: Readonly<Partial<Record<string, JumpState>>> = {},
    staleForward = false,
  ): string {
    const v = family === 4 ? '4' : '6';
    const allowSet = this.setName(`allow${v}` as IpsetKind);
    const bans = [
      `-m set --match-set ${this.setName(`ban${v}` as IpsetKind)} src -j DROP`,
      `-m set --match-set ${this.setName(`net${v}` as IpsetKind)} src -j DROP`,
    ];
    const chains = [this.chain, this.forwardChain, this.openChain, this.portsChain];
    const lines = [
      '*filter',
      ...chains.map((c) => `:${c} - [0:0]`),
      ...chains.map((c) => `-F ${c}`),
      `-A ${this.chain} -m set --match-set ${allowSet} src -j ${this.openChain}`,
      `-A ${this.chain} -m set --match-set ${allowSet} src -j RETURN`,
      ...bans.map((b) => `-A ${this.chain} ${b}`),
      `-A ${this.chain} -j ${this.openChain}`,
      `-A ${this.chain} -j ${this.portsChain}`,
      `-A ${this.forwardChain} -m set --match-set ${allowSet} src -j RETURN`,
      ...bans.map((b) => `-A ${this.forwardChain} ${b}`),
      `-A ${this.forwardChain} -j ${this.portsChain}`,
    ];
    for (const rule of rules) {
      if (rule.action !== 'allow') continue;
      const line = this.portRule(rule, family);
      if (line) lines.push(line);
    }
    for (const rule of rules) {
      if (rule.action !== 'deny') continue;
      const line = this.portRule(rule, family);
      if (line) lines.push(line);
    }
    if (staleForward) lines.push(`-D FORWARD -j ${this.chain}`);
    for (const hook of HOOKS) {
      const state = jumps[hook];
      const entry = this.entryChain(hook);
      if (state === 'elsewhere') lines.push(`-D ${hook} -j ${entry}`);
      if (state === 'elsewhere' || state === 'missing') lines.push(`-I ${hook} 1 -j ${entry}`);
    }
    lines.push('COMMIT', '');
    return lines.join('\n');
  }

  /** iptables-restore file that empties and deletes our chains (jumps must be gone first). */
  removeChainsFile(): string {
    // Declaring a chain creates it when missing, so an older layout without some of them still goes.
    const chains = [this.chain, this.forwardChain, this.openChain, this.portsChain];
    return [
      '*filter',
      ...chains.map((c) => `:${c} - [0:0]`),
      ...chains.map((c) => `-F ${c}`),
      ...chains.map((c) => `-X ${c}`),
      'COMMIT',
      '',
    ].join('\n');
  }

  /** Our set names, for matching `ipset save` output. */
  ownSets(): Map<string, IpsetKind> {
    return new Map(ALL_KINDS.map((k) => [this.setName(k), k]));
  }
}

/** Parse `ipset save` output: our ban sets' entries with remaining timeout and comment. */
export function parseIpsetSave(text: string, render: IptablesRenderer): KernelBan[] {
  const own = render.ownSets();
  const out: KernelBan[] = [];
  for (const line of text.split('\n')) {
    const m = /^add (\S+) (\S+)(.*)$/.exec(line);
    if (!m) continue;
    const kind = own.get(m[1]!);
    if (!kind || kind.startsWith('allow')) continue;
    let target: IpTarget;
    try {
      target = parseTarget(m[2]!, { allowBroadPrefix: true });
    } catch {
      continue;
    }
    const rest = m[3] ?? '';
    const timeout = /\btimeout (\d+)/.exec(rest);
    const comment = /\bcomment "([^"]*)"/.exec(rest);
    const seconds = timeout ? Number(timeout[1]) : 0;
    out.push({
      target,
      expiresSec: seconds > 0 ? seconds : null,
      ...(comment ? { comment: comment[1]! } : {}),
    });
  }
  return out;
}

/** The iptables driver: ipset sets with timeouts, one `ipset restore` and one `iptables-restore --noflush` per family. */
export function createIptablesDriver(ctx: DriverContext): Driver {
  const render = new IptablesRenderer(ctx.table, ctx.maxElements);
  const tools = {
    4: { ipt: 'iptables', restore: 'iptables-restore' },
    6: { ipt: 'ip6tables', restore: 'ip6tables-restore' },
  } as const;
  let ports: readonly PortRule[] = [];

  const opt = (signal?: AbortSignal) => (signal ? { signal } : {});

  async function exists(command: Command, signal?: AbortSignal): Promise<boolean> {
    return (await ctx.runner.run({ ...command, query: true }, opt(signal))).exitCode === 0;
  }

  async function exec(commands: Command[], signal?: AbortSignal): Promise<Command[]> {
    if (!ctx.dry) for (const c of commands) await runChecked(ctx.runner, c, signal);
    return commands;
  }

  function ipsetRestore(lines: string[]): Command {
    return { bin: 'ipset', args: ['-exist', '-file', INPUT_FILE, 'restore'], input: `${lines.join('\n')}\n` };
  }

  /** Our chains for both families; with `checkJumps`, also put our jump first in INPUT and FORWARD. */
  async function chainFiles(checkJumps: boolean, signal?: AbortSignal): Promise<Command[]> {
    const out: Command[] = [];
    for (const family of [4, 6] as const) {
      const t = tools[family];
      const jumps: Partial<Record<string, JumpState>> = {};
      let staleForward = false;
      if (checkJumps) {
        for (const hook of HOOKS) {
          if (ctx.dry) {
            jumps[hook] = 'missing';
            continue;
          }
          const listed = await ctx.runner.run(
            { bin: t.ipt, args: ['-w', '-S', hook], query: true },
            opt(signal),
          );
          const listing = listed.exitCode === 0 ? listed.stdout : '';
          jumps[hook] = jumpState(listing, hook, render.entryChain(hook));
          if (hook === 'FORWARD') staleForward = jumpState(listing, hook, render.chain) !== 'missing';
        }
      }
      out.push({
        bin: t.restore,
        args: ['-w', '--noflush', INPUT_FILE],
        input: render.restoreFile(family, ports, jumps, staleForward),
      });
    }
    return out;
  }

  function takePorts(changes: readonly Change[]): boolean {
    let changed = false;
    for (const c of changes) {
      if (c.type === 'set-ports') {
        ports = c.rules;
        changed = true;
      }
    }
    return changed;
  }

  return {
    name: 'iptables',
    async init(changes, signal) {
      takePorts(changes);
      const sets = ipsetRestore([...render.createSets(), ...render.ipsetLines(changes)]);
      return exec([sets, ...(await chainFiles(true, signal))], signal);
    },
    async apply(changes, signal) {
      const commands: Command[] = [];
      const lines = render.ipsetLines(changes);
      if (lines.length > 0) commands.push(ipsetRestore(lines));
      if (takePorts(changes)) commands.push(...(await chainFiles(false, signal)));
      return exec(commands, signal);
    },
    async destroy(signal) {
      const commands: Command[] = [];
      for (const family of [4, 6] as const) {
        const t = tools[family];
        const pairs = [
          ['INPUT', render.chain],
          ['FORWARD', render.forwardChain],
          ['FORWARD', render.chain],
        ] as const;
        for (const [hook, chain] of pairs) {
          const del: Command = { bin: t.ipt, args: ['-w', '-D', hook, '-j', chain] };
          if (ctx.dry) {
            commands.push(del);
            continue;
          }
          // A jump may have been inserted more than once by someone else: remove every copy.
          for (let i = 0; i < 16; i++) {
            if (!(await exists({ bin: t.ipt, args: ['-w', '-C', hook, '-j', chain] }, signal))) break;
            await runChecked(ctx.runner, del, signal);
            commands.push(del);
          }
        }
        const chainPresent =
          ctx.dry || (await exists({ bin: t.ipt, args: ['-w', '-S', render.chain] }, signal));
        if (chainPresent) {
          commands.push(
            ...(await exec(
              [{ bin: t.restore, args: ['-w', '--noflush', INPUT_FILE], input: render.removeChainsFile() }],
              signal,
            )),
          );
        }
      }
      let names: string[] = [...render.ownSets().keys()];
      if (!ctx.dry) {
        const listed = await ctx.runner.run({ bin: 'ipset', args: ['list', '-n'], query: true }, opt(signal));
        const present = new Set(listed.stdout.split('\n').map((l) => l.trim()));
        names = names.filter((n) => present.has(n));
      }
      if (names.length > 0)
        commands.push(...(await exec([ipsetRestore(names.map((n) => `destroy ${n}`))], signal)));
      ports = [];
      return commands;
    },
    async list(signal) {
      if (ctx.dry) return [];
      const result = await runChecked(ctx.runner, { bin: 'ipset', args: ['save'], query: true }, signal);
      return parseIpsetSave(result.stdout, render);
    },
  };
}
