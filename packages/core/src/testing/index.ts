/**
 * @packageDocumentation
 * Test plug-ins and servers without sockets or waiting: a virtual clock and a harness that runs a real
 * core server's pipeline over in-memory connections (in the spirit of Netty's EmbeddedChannel).
 */
export {
  createHarness,
  type Harness,
  type HarnessOptions,
  type TestPeer,
  type TestPeerOptions,
} from './harness.js';
export { createVirtualClock, type VirtualClock } from './virtual-clock.js';
