// Bundles the bench (bench/main.ts and everything it imports, the peers TensorFlow.js and jax-js included)
// into one ESM file for Node, for bench/gpu/pack.sh: `node bench/gpu/build.mjs OUTDIR` writes OUTDIR/bench.mjs.
// Three places read files relative to their own source, which a bundle moves; each is rewritten here, and
// the build fails if a rewrite no longer matches its source:
//   - node_modules/webgpu/index.js loads dist/<platform>-<arch>/dawn.node beside itself: the bundle loads
//     $RLHF_DAWN_NODE (run.sh unpacks the carried dawn.node and sets it), else that path beside the bundle;
//   - src/gpu/node.ts reads shaders from ../../shaders/: the bundle reads $RLHF_SHADER_DIR, else ./shaders/
//     beside the bundle (pack.sh copies them there, so they match the code that was bundled);
//   - bench/peer-jaxjs.ts finds jax-js's version beside its resolved entry: the bundle has it written in.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const outdir = resolve(process.argv[2] ?? join(root, '.gpu-bench'));
const require = createRequire(join(root, 'package.json'));
const jaxVersion = JSON.parse(readFileSync(join(dirname(require.resolve('@jax-js/jax')), '..', 'package.json'), 'utf8')).version;

/** [file suffix, text to find, replacement] */
const rewrites = [
  [
    'node_modules/webgpu/index.js',
    "const dawnNodePath = join(__dirname, 'dist', `${process.platform}-${arch}`, 'dawn.node');",
    "const dawnNodePath = process.env.RLHF_DAWN_NODE || join(__dirname, 'dist', `${process.platform}-${arch}`, 'dawn.node');",
  ],
  [
    'src/gpu/node.ts',
    "const SHADER_DIR = fileURLToPath(new URL('../../shaders/', import.meta.url));",
    "const SHADER_DIR = process.env.RLHF_SHADER_DIR ? process.env.RLHF_SHADER_DIR.replace(/\\/*$/, '/') : fileURLToPath(new URL('./shaders/', import.meta.url));",
  ],
  ['bench/peer-jaxjs.ts', "version: jaxVersion() ?? 'unknown'", `version: jaxVersion() ?? ${JSON.stringify(jaxVersion)}`],
];
const used = new Set();

const rewritePlugin = {
  name: 'gpu-bench-rewrites',
  setup(b) {
    b.onLoad({ filter: /(webgpu[\\/]index\.js|src[\\/]gpu[\\/]node\.ts|bench[\\/]peer-jaxjs\.ts)$/ }, (args) => {
      const path = args.path.replaceAll('\\', '/');
      const r = rewrites.find(([suffix]) => path.endsWith(suffix));
      if (!r) return undefined;
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes(r[1])) throw new Error(`${r[0]}: the line to rewrite is gone (${r[1]}); update bench/gpu/build.mjs`);
      used.add(r[0]);
      return { contents: text.replace(r[1], r[2]), loader: path.endsWith('.ts') ? 'ts' : 'js', resolveDir: dirname(args.path) };
    });
  },
};

const result = await build({
  entryPoints: [join(root, 'bench/main.ts')],
  outfile: join(outdir, 'bench.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // CommonJS dependencies call require() for Node's modules; an ESM bundle has none of its own
  banner: { js: "import { createRequire as __gpuBenchCreateRequire } from 'node:module'; const require = __gpuBenchCreateRequire(import.meta.url);" },
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [rewritePlugin],
  metafile: true,
});
for (const [suffix] of rewrites)
  if (!used.has(suffix)) throw new Error(`${suffix} was not in the bundle: its rewrite did not apply; update bench/gpu/build.mjs`);
const inputs = Object.keys(result.metafile.inputs);
const has = (p) => inputs.some((i) => i.includes(p));
console.log(
  `bundle: ${join(outdir, 'bench.mjs')}, ${inputs.length} inputs; tfjs ${has('@tensorflow/tfjs-backend-webgpu') ? 'in' : 'NOT in'} it, jax-js ${has('@jax-js/jax') ? `${jaxVersion} in` : 'NOT in'} it`,
);
