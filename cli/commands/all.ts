import type { CommandModule } from 'yargs';
import { indexCommand } from './index.js';
import { payoutsCommand } from './payouts.js';
import { queryCommands } from './query.js';
import { recountCommand } from './recount.js';
import { scriptCommand } from './script.js';
import { serveCommand } from './serve.js';
import { verifyCommand } from './verify.js';
import { announceCommand, broadcastCommand, renewCommand, statusCommand } from './operator.js';
import { keyCommand } from './key.js';
import { checkCommand } from './check.js';
import { mirrorCommand } from './mirror.js';
import { snapshotCommand } from './snapshot.js';
import { compareCommand } from './compare.js';
import { diffCommand, proofCommand } from './proof.js';

/** Every command of `nodereg`, in the order its help lists them. */
export const COMMANDS: readonly CommandModule[] = [
  scriptCommand, recountCommand, indexCommand, ...queryCommands, payoutsCommand, verifyCommand, checkCommand, snapshotCommand, compareCommand,
  proofCommand, diffCommand, announceCommand, renewCommand, broadcastCommand, statusCommand, keyCommand, serveCommand, mirrorCommand,
];
