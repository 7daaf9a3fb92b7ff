// Runs before `npm test` (the "pretest" script): the tests need a few system packages on Linux (the
// Vulkan loader and lavapipe for Dawn in Node, Chromium for the page, PyYAML for the model card).
// When they are all there this prints nothing. When some are missing: as root (or with passwordless
// sudo) on Debian or Ubuntu it installs them with .ci/setup-system and goes on; otherwise it stops at
// once with the one command to run, instead of letting the tests fail one by one.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** What a machine has, as the checks see it (replaced in tests). */
export const realProbe = {
  platform: process.platform,
  exists: (p) => existsSync(p),
  list: (dir) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  },
  run: (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : undefined;
  },
  env: process.env,
  uid: typeof process.getuid === 'function' ? process.getuid() : -1,
  osRelease: () => {
    try {
      return readFileSync('/etc/os-release', 'utf8');
    } catch {
      return '';
    }
  },
};

const LIBDIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'];

/** The packages missing on this machine, each with why the tests need it; [] when nothing is (or not on Linux). */
export function missingPackages(p = realProbe) {
  if (p.platform !== 'linux') return [];
  const out = [];
  if (!LIBDIRS.some((d) => p.exists(`${d}/libvulkan.so.1`))) out.push('libvulkan1 (the Vulkan loader Dawn opens)');
  const icd = p.list('/usr/share/vulkan/icd.d').some((f) => /^lvp_icd.*\.json$/.test(f));
  const mesa = p.run('dpkg-query', ['-W', '-f=${Version}', 'mesa-vulkan-drivers']);
  const major = mesa ? Number(/^(?:\d+:)?(\d+)/.exec(mesa)?.[1]) : undefined;
  if (!icd) out.push('mesa-vulkan-drivers (lavapipe, the CPU Vulkan driver the GPU tests run on)');
  else if (major !== undefined && major < 23)
    out.push(`mesa-vulkan-drivers 23 or newer (this is ${mesa}; Dawn rejects the lavapipe of Mesa 22: on Debian 12 take it from bookworm-backports)`);
  const chromium = p.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!p.exists(chromium)) out.push(`chromium (the browser the page tests drive, at ${chromium}; CHROMIUM_PATH names another)`);
  if (p.run('python3', ['-c', 'import yaml']) === undefined) out.push('python3-yaml (PyYAML: the model-card test reads our front matter back through it)');
  return out;
}

/** Whether .ci/setup-system can run here without asking: Debian or Ubuntu, as root or with passwordless sudo. */
export function canInstall(p = realProbe) {
  const debianLike = /^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b/m.test(p.osRelease());
  return debianLike && (p.uid === 0 || p.run('sudo', ['-n', 'true']) !== undefined);
}

export const INSTALL = 'sudo bash .ci/setup-system';

function main() {
  const missing = missingPackages();
  if (!missing.length) return;
  if (canInstall()) {
    process.stderr.write(`npm test: installing the system packages the tests need (${missing.map((m) => m.split(' ')[0]).join(', ')}) with .ci/setup-system\n`);
    execFileSync('bash', [fileURLToPath(new URL('../.ci/setup-system', import.meta.url))], { stdio: 'inherit' });
    const still = missingPackages();
    if (!still.length) return;
    missing.splice(0, missing.length, ...still);
  }
  process.stderr.write(
    `npm test needs system packages this machine lacks:\n${missing.map((m) => `  - ${m}\n`).join('')}Install them with:\n  ${INSTALL}\n(Debian 12 or Ubuntu; see "System packages the tests need" in the README)\n`,
  );
  process.exit(1);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
