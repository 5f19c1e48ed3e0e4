#!/usr/bin/env node
// The npm registry reachable from this workplace serves only this machine's
// platform binaries, so `npm install` leaves other platforms' optional
// packages (e.g. @unrs/resolver-binding-darwin-x64, pulled in by Jest) out of
// package-lock.json, and `npm ci` then refuses the lockfile. This restores an
// entry for each missing optional platform package, with the os/cpu its name
// states, so npm ci skips it here and fetches it on the platform it is for.
// Run it after any `npm install` that changes package-lock.json.
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const pkgs = lock.packages;
const platform = /-(darwin|linux|win32|freebsd|android|openharmony|sunos|aix)-(x64|arm64|arm|ia32|loong64|ppc64|riscv64|s390x)(?:-(gnu|musl|gnueabihf|musleabihf|msvc|eabi))?$/;
let added = 0;
for (const [path, entry] of Object.entries(pkgs)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const at = `${path ? path + '/' : ''}node_modules/${name}`;
    const hoisted = `node_modules/${name}`;
    if (pkgs[at] || pkgs[hoisted]) continue;
    const m = platform.exec(name);
    if (!m) continue;
    const e = { version, cpu: [m[2]], license: entry.license ?? 'MIT', optional: true, os: [m[1]] };
    if (m[1] === 'linux' && m[3]) e.libc = [m[3].startsWith('musl') ? 'musl' : 'glibc'];
    pkgs[hoisted] = e;
    added++;
  }
}
const sorted = Object.fromEntries(Object.entries(pkgs).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0)));
lock.packages = sorted;
writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(`lock-optional: added ${added} optional platform entr${added === 1 ? 'y' : 'ies'}`);
