#!/usr/bin/env node
import { hideBin } from 'yargs/helpers';
import { runCli } from './run.js';

/**
 * The process around `runCli`. Exit status: 0 done, 1 a problem the user can
 * fix (the message says how), 2 a usage mistake, 70 a bug. A finished command
 * lets the process end by itself (its own exit status set); a failed one
 * may have left handles open, so the process exits at once.
 */
const outcome = await runCli(hideBin(process.argv));
if (outcome.failed) process.exit(outcome.status);
