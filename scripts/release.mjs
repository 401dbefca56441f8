// `pnpm release`: publish every package whose version is not on the registry yet (changesets).
// Provenance needs an OIDC identity of a CI provider; it is asked for only where one exists (GitHub
// Actions with `permissions: id-token: write` sets ACTIONS_ID_TOKEN_REQUEST_URL), so a local
// `pnpm release` publishes without it instead of failing. SOCK_PROVENANCE=0 turns it off in CI too.
import { spawnSync } from 'node:child_process';

// biome-ignore lint/suspicious/noUndeclaredEnvVars: a release script, not a turbo task
const oidc = Boolean(process.env.ACTIONS_ID_TOKEN_REQUEST_URL) && process.env.SOCK_PROVENANCE !== '0';
const env = { ...process.env, ...(oidc ? { NPM_CONFIG_PROVENANCE: 'true' } : {}) };
process.stderr.write(
  `release: provenance ${oidc ? 'on (CI OIDC identity found)' : 'off (no CI OIDC identity)'}\n`,
);
const r = spawnSync('pnpm', ['exec', 'changeset', 'publish', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env,
});
process.exit(r.status ?? 1);
