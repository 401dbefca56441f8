/**
 * @sock/observe/status: a live status page for a sock server (like HAProxy's stats page), served from
 * the collector: connections now and over the last minutes, refusals by reason over time, top offending
 * keys, active bans with time left, certificate expiry and per-listener figures.
 */
export {
  createStatusBoard,
  type StatusBoard,
  type StatusBoardOptions,
  type StatusReport,
  type StatusSample,
} from './status/board.js';
export { isLoopback, type StatusServer, type StatusServerOptions, serveStatus } from './status/server.js';
