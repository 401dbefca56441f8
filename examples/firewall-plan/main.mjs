// @sock/firewall: what a ban would run, printed by the plan backend (nothing is applied; no root needed).
import { createFirewall, FirewallError } from '@sock/firewall';

const firewall = createFirewall({ backend: 'plan', planDialect: 'nftables' });
const result = await firewall.ban('203.0.113.7', { ttl: '10m', reason: 'scanner' });
for (const command of result.commands) {
  console.log(`${command.bin} ${command.args.join(' ')}`);
  if (command.input) console.log(command.input.trimEnd()); // nft reads its batch from this file
}
try {
  await firewall.ban('203.0.113.7; flush ruleset');
} catch (error) {
  if (FirewallError.isInstance(error)) console.log(`refused: ${error.code}`); // ERR_SOCK_FW_INVALID_ADDRESS
}
