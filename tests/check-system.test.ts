// `npm test` checks the system packages first (scripts/check-system.mjs, the pretest script): all
// there, it says nothing; missing, it names each with why and the one command to install them.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script (it runs before TypeScript is checked), no declarations
import { canInstall, INSTALL, missingPackages } from '../scripts/check-system.mjs';

type Probe = Parameters<typeof missingPackages>[0];
const machine = (
  o: { files?: string[]; icd?: string[]; mesa?: string; yaml?: boolean; uid?: number; os?: string; sudo?: boolean; env?: Record<string, string> } = {},
): Probe => ({
  platform: 'linux',
  exists: (f: string) => (o.files ?? ['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/usr/bin/chromium']).includes(f),
  list: () => o.icd ?? ['lvp_icd.json'],
  run: (cmd: string) =>
    cmd === 'dpkg-query'
      ? (o.mesa ?? '25.0.7-2~bpo12+1')
      : cmd === 'python3'
        ? (o.yaml ?? true)
          ? ''
          : undefined
        : cmd === 'sudo'
          ? o.sudo
            ? ''
            : undefined
          : undefined,
  env: o.env ?? {},
  uid: o.uid ?? 1000,
  osRelease: () => o.os ?? 'ID=debian\nVERSION_ID="12"\n',
});

describe('npm test checks the system packages first', () => {
  it('names what is missing and why; nothing when all is there', () => {
    expect(missingPackages(machine())).toEqual([]);
    expect(missingPackages({ ...machine(), platform: 'darwin' })).toEqual([]); // the Linux packages only
    const none = missingPackages(machine({ files: [], icd: [], yaml: false }));
    expect(none.map((m: string) => m.split(' ')[0])).toEqual(['libvulkan1', 'mesa-vulkan-drivers', 'chromium', 'python3-yaml']);
    expect(missingPackages(machine({ mesa: '22.3.6-1+deb12u1' }))).toEqual([
      expect.stringMatching(/^mesa-vulkan-drivers 23 or newer \(this is 22\.3\.6.*bookworm-backports/),
    ]);
    expect(missingPackages(machine({ env: { CHROMIUM_PATH: '/opt/chrome/chrome' } }))).toEqual([expect.stringContaining('at /opt/chrome/chrome')]);
  });

  it('installs by itself only where it can without asking: Debian or Ubuntu, as root or with passwordless sudo', () => {
    expect(canInstall(machine({ uid: 0 }))).toBe(true);
    expect(canInstall(machine({ sudo: true }))).toBe(true);
    expect(canInstall(machine())).toBe(false);
    expect(canInstall(machine({ uid: 0, os: 'ID=ubuntu\nID_LIKE=debian\n' }))).toBe(true);
    expect(canInstall(machine({ uid: 0, os: 'ID=fedora\n' }))).toBe(false);
    expect(INSTALL).toBe('sudo bash .ci/setup-system');
  });

  it('on this machine (set up) it passes silently', () => {
    const r = spawnSync(process.execPath, ['scripts/check-system.mjs'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
  });
});
