import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { type GuardsPolicy, resolvePolicy } from '@sock/guards';
import { parseSpiffeId } from '@sock/tls';
import { parse as parseYaml } from 'yaml';
import { UsageError } from './errors.js';

const CLIENT_AUTH = ['none', 'optional', 'require'] as const;
const TLS_PROFILES = ['intermediate', 'modern'] as const;
const TLS_FIELDS = ['cert', 'key', 'ca', 'clientAuth', 'profile', 'allowSpiffe'] as const;

/** The `tls` section of a `--config` file, checked, with paths made absolute. */
export interface ConfigTls {
  cert?: string;
  key?: string;
  ca?: string;
  clientAuth?: (typeof CLIENT_AUTH)[number];
  profile?: (typeof TLS_PROFILES)[number];
  allowSpiffe?: string[];
}

/** What `sock listen --config <file>` holds: a guards policy, TLS settings, or both. */
export interface ListenConfig {
  path: string;
  guards?: GuardsPolicy;
  tls?: ConfigTls;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const show = (v: unknown) => JSON.stringify(v) ?? String(v);

/**
 * Read `--config <file>` (JSON for `.json`, else YAML). A file whose top level has a `guards` or `tls`
 * key is the combined format; any other file is a plain guards policy (the older format). Every error is
 * a usage error naming the file and the field (`config.tls.clientAuth: expected one of …`).
 */
export async function loadListenConfig(path: string): Promise<ListenConfig> {
  const fail = (message: string): never => {
    throw new UsageError(`--config: ${path}: ${message}`);
  };
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    fail((err as Error).message);
  }
  const json = extname(path).toLowerCase() === '.json';
  let data: unknown;
  try {
    data = json ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    fail(`not valid ${json ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  data ??= {};
  if (!isObject(data)) return fail(`config: expected an object, got ${show(data)}`);
  const base = dirname(resolve(path));
  const combined = 'guards' in data || 'tls' in data;
  if (!combined) return { path, guards: checkGuards(data, base, 'config', fail) };
  const unknown = Object.keys(data).filter((k) => k !== 'guards' && k !== 'tls');
  if (unknown.length > 0) {
    fail(
      `config.${unknown[0]}: unknown field (a file with guards or tls holds only those two; the guards policy goes under guards)`,
    );
  }
  const config: ListenConfig = { path };
  if (data.guards !== undefined && data.guards !== null)
    config.guards = checkGuards(data.guards, base, 'config.guards', fail);
  if (data.tls !== undefined && data.tls !== null) config.tls = checkTls(data.tls, base, fail);
  return config;
}

function checkGuards(
  input: unknown,
  base: string,
  name: string,
  fail: (message: string) => never,
): GuardsPolicy {
  try {
    resolvePolicy(input, name);
  } catch (err) {
    const issues = (err as { issues?: Array<{ message: string }> }).issues;
    // The guards package names fields `policy.…`; say where they are in this file.
    if (issues?.length) fail(issues.map((i) => i.message.replace(/^policy(?=[.:[])/, name)).join('; '));
    fail((err as Error).message);
  }
  const policy = input as GuardsPolicy;
  if (policy.ip) {
    policy.ip = {
      ...policy.ip,
      ...(policy.ip.allowFiles ? { allowFiles: policy.ip.allowFiles.map((f) => resolve(base, f)) } : {}),
      ...(policy.ip.denyFiles ? { denyFiles: policy.ip.denyFiles.map((f) => resolve(base, f)) } : {}),
    };
  }
  return policy;
}

function checkTls(input: unknown, base: string, fail: (message: string) => never): ConfigTls {
  if (!isObject(input)) return fail(`config.tls: expected an object, got ${show(input)}`);
  for (const k of Object.keys(input)) {
    if (!(TLS_FIELDS as readonly string[]).includes(k))
      fail(`config.tls.${k}: unknown field (expected one of ${TLS_FIELDS.join(', ')})`);
  }
  const tls: ConfigTls = {};
  for (const field of ['cert', 'key', 'ca'] as const) {
    const v = input[field];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v === '')
      fail(`config.tls.${field}: expected a file path (relative to the config file), got ${show(v)}`);
    const abs = resolve(base, v as string);
    if (!existsSync(abs)) fail(`config.tls.${field}: no such file: ${abs}`);
    tls[field] = abs;
  }
  const oneOf = <T extends string>(field: string, v: unknown, allowed: readonly T[]): T | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v))
      fail(`config.tls.${field}: expected one of ${allowed.join(', ')}, got ${show(v)}`);
    return v as T;
  };
  const clientAuth = oneOf('clientAuth', input.clientAuth, CLIENT_AUTH);
  if (clientAuth) tls.clientAuth = clientAuth;
  const profile = oneOf('profile', input.profile, TLS_PROFILES);
  if (profile) tls.profile = profile;
  if (input.allowSpiffe !== undefined) {
    const ids = input.allowSpiffe;
    if (!Array.isArray(ids) || ids.length === 0)
      fail(`config.tls.allowSpiffe: expected a non-empty list of SPIFFE IDs, got ${show(ids)}`);
    (ids as unknown[]).forEach((id, i) => {
      try {
        if (typeof id !== 'string') throw new Error(`expected a string, got ${show(id)}`);
        parseSpiffeId(id);
      } catch (err) {
        fail(`config.tls.allowSpiffe[${i}]: ${(err as Error).message}`);
      }
    });
    tls.allowSpiffe = ids as string[];
  }
  return tls;
}
