import type { ChildProcess } from 'node:child_process';

export interface LabSide {
  name: 'a' | 'b';
  netns: string;
  veth: string;
  /** Outer (IKE/ESP) address on the veth. */
  outer: string;
  /** Inner (protected) address on lo. */
  inner: string;
  innerPrefix: string;
  dir: string;
  vici: string;
  log: string;
  conf: string;
  charon: ChildProcess | undefined;
}
export interface Lab {
  id: string;
  dir: string;
  pki: string;
  a: LabSide;
  b: LabSide;
  stop(): Promise<void>;
  restartCharon(side: 'a' | 'b'): Promise<void>;
}
export const IP: string;
export const CHARON: string;
export function labMissing(): string | undefined;
export function startLab(options?: { cleartextRoutes?: boolean }): Promise<Lab>;
export function inNetns(
  side: LabSide,
  argv: string[],
  options?: { timeout?: number },
): Promise<{ stdout: string; stderr: string }>;
export function capture(side: LabSide): Promise<{ stop(): Promise<{ raw: Buffer; lines: string[] }> }>;
