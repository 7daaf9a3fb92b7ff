// The GPU runtime: pipelines compiled once and cached, buffers, bind groups, one-submit steps,
// readback and error scopes. It knows nothing about models.
//
// Execution model (llm.c-like, planned up front): an op turns its arguments into `Call`s (pipeline +
// bind group + workgroup count) once, when a step is planned for a shape. Running a step records its
// list of calls into one compute pass and submits once; a hot loop creates no buffers or bind groups.
import { ALIGN, alignUp } from '../shared/align.ts';
import type { AdapterSummary } from './device.ts';

export type ShaderSource = (file: string) => string;

/** A range of a GPU buffer holding `n` 32-bit elements starting at byte `off` (256-byte aligned). */
export interface View {
  buf: GPUBuffer;
  off: number;
  n: number;
}

/** Binding kinds of an explicit bind group layout: u = uniform, r = read-only storage, w = read-write storage. */
export type BindingKind = 'u' | 'r' | 'w';

export interface Kernel {
  name: string;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  kinds: BindingKind[];
  /** The fields of the entry point's uniform struct, in order (what `Gpu.params` packs by name). */
  params: ParamField[];
}

export type ScalarType = 'u32' | 'i32' | 'f32';
export interface ParamField {
  name: string;
  type: ScalarType;
}

/** What an entry point of a WGSL module binds, read from its text: each binding's kind (slots 0 up to the last it
 *  uses), the global it reads there ('' at a placeholder slot) and its uniform struct's fields. */
export interface EntryLayout {
  kinds: BindingKind[];
  names: string[];
  params: ParamField[];
}

/**
 * Reads the layout of `entry` from WGSL source: the `@group(0) @binding(i) var<...>` globals the entry point
 * uses (itself or through the functions it calls), as u (uniform), r (storage, read) or w (storage,
 * read_write), and the fields of the struct its uniform holds (scalars u32, i32, f32). A name a function
 * declares itself (a parameter, let, var or const) is local to it, not a global it uses: the prelude's locals
 * never pull in a binding of the same name. An entry point using two globals at one slot is an error. A
 * slot no global of the entry uses, below one it does, takes the kind every declaration of that slot in the
 * module has (or read-only storage where they differ): a launcher binds a placeholder there.
 */
export function entryLayout(code: string, entry: string): EntryLayout {
  const src = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
  const structs = new Map<string, ParamField[]>();
  for (const m of src.matchAll(/\bstruct\s+(\w+)\s*\{([^}]*)\}/g)) {
    structs.set(
      m[1]!,
      m[2]!
        .split(',')
        .map((f) => f.trim())
        .filter(Boolean)
        .map((f) => {
          const [name, type] = f.split(':').map((t) => t.trim());
          if (type !== 'u32' && type !== 'i32' && type !== 'f32') throw new Error(`struct ${m[1]}: field ${name} is ${type}, not a 32-bit scalar`);
          return { name: name!, type };
        }),
    );
  }
  const globals = new Map<string, { slot: number; kind: BindingKind; type: string }>();
  for (const m of src.matchAll(/@group\(0\)\s*@binding\((\d+)\)\s*var<([^>]*)>\s*(\w+)\s*:\s*([^;]+);/g)) {
    const space = m[2]!.replace(/\s/g, '');
    const kind: BindingKind =
      space === 'uniform'
        ? 'u'
        : space === 'storage,read_write'
          ? 'w'
          : space === 'storage' || space === 'storage,read'
            ? 'r'
            : (() => {
                throw new Error(`binding ${m[3]}: address space <${m[2]}>`);
              })();
    globals.set(m[3]!, { slot: Number(m[1]), kind, type: m[4]!.trim() });
  }
  // each function's identifiers (member names after '.' are not identifiers)
  const fns = new Map<string, Set<string>>();
  for (const m of src.matchAll(/\bfn\s+(\w+)\s*\(/g)) {
    let i = m.index! + m[0].length,
      depth = 1;
    while (depth > 0 && i < src.length) ((depth += src[i] === '(' ? 1 : src[i] === ')' ? -1 : 0), i++);
    const open = src.indexOf('{', i);
    let j = open + 1;
    depth = 1;
    while (depth > 0 && j < src.length) ((depth += src[j] === '{' ? 1 : src[j] === '}' ? -1 : 0), j++);
    const args = src.slice(m.index! + m[0].length, i - 1),
      body = src.slice(open, j);
    const locals = new Set([...args.matchAll(/(\w+)\s*:/g), ...body.matchAll(/\b(?:let|const|var(?:\s*<[^>]*>)?)\s+(\w+)/g)].map((d) => d[1]!));
    fns.set(m[1]!, new Set((src.slice(m.index!, j).match(/(?<![.\w])[A-Za-z_]\w*/g) ?? []).filter((id) => !locals.has(id))));
  }
  if (!fns.has(entry)) throw new Error(`no function ${entry} in the shader`);
  const used = new Set<string>(),
    seen = new Set<string>([entry]),
    todo = [entry];
  while (todo.length) {
    for (const id of fns.get(todo.pop()!)!) {
      if (globals.has(id)) used.add(id);
      else if (fns.has(id) && !seen.has(id)) (seen.add(id), todo.push(id));
    }
  }
  const slots: (BindingKind | undefined)[] = [],
    names: string[] = [];
  let params: ParamField[] = [];
  for (const name of used) {
    const g = globals.get(name)!;
    if (names[g.slot]) throw new Error(`${entry}: two globals at binding ${g.slot}, ${names[g.slot]} and ${name}`);
    slots[g.slot] = g.kind;
    names[g.slot] = name;
    if (g.kind === 'u')
      params =
        structs.get(g.type) ??
        (() => {
          throw new Error(`${entry}: uniform ${name} of unknown struct ${g.type}`);
        })();
  }
  const kinds = Array.from(slots, (k, slot) => {
    if (k) return k;
    const decl = new Set([...globals.values()].filter((g) => g.slot === slot).map((g) => g.kind));
    return decl.size === 1 ? [...decl][0]! : 'r'; // read-only storage takes any placeholder the launcher binds
  });
  return { kinds, names: Array.from(kinds, (_, slot) => names[slot] ?? ''), params };
}

/** The shared helpers' file (shaders/prelude.wgsl): prepended to every shader by composeShader. */
export const PRELUDE = 'prelude.wgsl';

/** How a workgroup reduces (the prelude's wg_reduce): with subgroup operations, or a tree in workgroup memory. */
export type ReductionPath = 'subgroups' | 'workgroup';

/**
 * WGSL text (the prelude, or a shader) as compiled on one path: of each `//#if subgroups` ... `//#else` ...
 * `//#endif` part, the lines of the path's branch; the other branch and the marker lines become empty lines, so
 * line i of the result is line i of the file (compiler messages keep pointing at the right line). A part under
 * `//#if NAME` for another NAME is kept when the boolean define NAME is true (`flags`; absent is false): what a
 * constant cannot choose, such as a binding's element type and the `enable f16;` it needs (matmul's B_F16).
 */
export function pathText(text: string, subgroups: boolean, file = PRELUDE, flags: Readonly<Record<string, boolean>> = {}): string {
  let branch: 'if' | 'else' | undefined,
    on = false;
  const out = text.split('\n').map((line, i) => {
    const m = /^\s*\/\/#(if (\w+)|else|endif)\s*$/.exec(line),
      marker = m?.[2] ? 'if' : m?.[1];
    if (marker === 'if') {
      if (branch) throw new Error(`${file}:${i + 1}: //#if inside //#if`);
      branch = 'if';
      on = m![2] === 'subgroups' ? subgroups : flags[m![2]!] === true;
    } else if (marker === 'else') {
      if (branch !== 'if') throw new Error(`${file}:${i + 1}: //#else without //#if subgroups`);
      branch = 'else';
    } else if (marker === 'endif') {
      if (!branch) throw new Error(`${file}:${i + 1}: //#endif without //#if subgroups`);
      branch = undefined;
    } else if (/^\s*\/\/#/.test(line)) {
      throw new Error(`${file}:${i + 1}: unknown marker ${line.trim()} (only //#if subgroups or //#if DEFINE, //#else, //#endif)`);
    }
    if (marker) return '';
    return branch === undefined || (branch === 'if') === on ? line : '';
  });
  if (branch) throw new Error(`${file}: //#if subgroups without //#endif`);
  return out.join('\n');
}

/** The prelude as compiled on one path (pathText). */
export const preludeFor = (prelude: string, subgroups: boolean): string => pathText(prelude, subgroups, PRELUDE);

/** The functions the prelude's subgroup parts declare: a shader calling one of them uses subgroups (composeShader). */
export function subgroupHelpers(prelude: string): string[] {
  const names = new Set<string>();
  for (const m of prelude.matchAll(/^\s*\/\/#if subgroups\s*$([\s\S]*?)^\s*\/\/#(?:else|endif)\s*$/gm)) {
    for (const f of m[1]!.matchAll(/^fn\s+(\w+)/gm)) names.add(f[1]!);
  }
  return [...names];
}

/** A shader as compiled, and where each of its lines came from. */
export interface ComposedShader {
  code: string;
  /** Whether it was composed with the prelude's subgroup parts and `enable subgroups;`. */
  subgroups: boolean;
  /** "attention.wgsl:12", "prelude.wgsl:3", "defines" or "directives" (the runtime's `enable subgroups;`) for 1-based line `line` of `code`. */
  where(line: number): string;
}

/**
 * The WGSL the runtime compiles for `file` (text `src`): its directives (`enable`, `requires`, `diagnostic`,
 * which must come first), then `defines` as constants, then the prelude, then the rest of the file. WGSL
 * declarations may come in any order, so the shader uses the defines and the prelude's helpers wherever.
 * With `path` 'subgroups', a shader that calls a helper of the prelude's subgroup parts (wg_reduce), or has a
 * `//#if subgroups` part of its own (matmul's gemv_nt), gets `enable subgroups;` after its own directives and the
 * subgroup parts of the prelude and of itself; every other shader, and every shader on the 'workgroup' path, gets
 * the `//#else` parts and no directive (WGSL refuses a mention of a subgroup builtin without `enable subgroups;`,
 * even in code no entry point uses).
 */
export function composeShader(file: string, src: string, prelude: string, defines: Defines = {}, path: ReductionPath = 'workgroup'): ComposedShader {
  if (file === PRELUDE) throw new Error(`${PRELUDE} is prepended to every shader; it is no shader of its own`);
  const consts = Object.entries(defines).map(([k, v]) => `const ${k} = ${typeof v === 'boolean' ? String(v) : Number.isInteger(v) ? `${v}u` : `${v}f`};`);
  const calls = src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
  const subgroups =
    path === 'subgroups' && (/^\s*\/\/#if subgroups\s*$/m.test(src) || subgroupHelpers(prelude).some((f) => new RegExp(`\\b${f}\\s*\\(`).test(calls)));
  const enable = subgroups ? ['enable subgroups;'] : [];
  const flags = Object.fromEntries(Object.entries(defines).filter(([, v]) => typeof v === 'boolean')) as Record<string, boolean>;
  const lines = pathText(src, subgroups, file, flags).split('\n'),
    pre = preludeFor(prelude, subgroups).trimEnd().split('\n');
  let at = 0;
  for (let i = 0; i < lines.length; i++) if (/^\s*(enable|requires|diagnostic)\b/.test(lines[i]!)) at = i + 1;
  const code = [...lines.slice(0, at), ...enable, ...consts, ...pre, ...lines.slice(at)].join('\n');
  const head = at + enable.length;
  const where = (line: number): string => {
    const i = line - 1;
    if (i < at) return `${file}:${line}`;
    if (i < head) return 'directives';
    if (i < head + consts.length) return 'defines';
    if (i < head + consts.length + pre.length) return `${PRELUDE}:${i - head - consts.length + 1}`;
    return `${file}:${i - enable.length - consts.length - pre.length + 1}`;
  };
  return { code, subgroups, where };
}

export interface Call {
  kernel: Kernel;
  group: GPUBindGroup;
  workgroups: [number, number, number];
  /** The uniform buffers it binds (made by `params` for it): whoever owns the call frees them (Gpu.release). */
  uniforms: readonly GPUBuffer[];
}

export class GpuError extends Error {}

/** An error an error scope caught, as a GpuError naming what raised it. */
/** Opens the three error scopes every GPU call here is checked in (closed by popScopes, in one go). */
function pushScopes(d: GPUDevice): void {
  d.pushErrorScope('internal');
  d.pushErrorScope('out-of-memory');
  d.pushErrorScope('validation');
}

/** Closes pushScopes's three scopes together; their first error, out of memory first (the validation errors
 *  that follow from a buffer that could not be made are its consequence), or null. */
async function popScopes(d: GPUDevice): Promise<GPUError | null> {
  const errs = await Promise.all([d.popErrorScope(), d.popErrorScope(), d.popErrorScope()]);
  return errs.find((e) => e instanceof GPUOutOfMemoryError) ?? errs.find((e) => e !== null) ?? null;
}

function scopeError(label: string, err: GPUError): GpuError {
  const kind = err instanceof GPUOutOfMemoryError ? 'out of GPU memory' : err instanceof GPUInternalError ? 'GPU internal error' : 'GPU validation error';
  return new GpuError(`${label}: ${kind}: ${err.message}`);
}

/** The device is gone (a driver reset or timeout, GPU memory exhausted, the browser took it back):
 *  nothing on it runs any more, and a new device (a page reload) is the way on. */
export class GpuLostError extends GpuError {
  constructor(
    readonly reason: string,
    detail: string,
  ) {
    super(`the GPU device was lost${reason && reason !== 'unknown' ? ` (${reason})` : ''}${detail ? `: ${detail}` : ''}`);
  }
}

export interface GpuOptions {
  /** Use at most this many bytes per storage binding (to exercise the paths that split large tensors). */
  maxBinding?: number;
  /** Use at most this many bytes per buffer (to exercise the tables split across buffers). */
  maxBuffer?: number;
  /** false: reductions take the workgroup-memory tree even where the device has 'subgroups' (the tests run
   *  both paths on one adapter); by default they use subgroup operations wherever the device has them. */
  subgroups?: boolean;
  /** false: frozen weights stay f32 even where the device has 'shader-f16' (the tests run both on one adapter);
   *  by default a model built for frozen use under LoRA keeps its linear weights in f16 there (Gpu.f16Weights). */
  f16Weights?: boolean;
  /** Which vec4 matrix-vector kernel reads a B stored [N, K] (the Hub's Linear layout) in decoding: true, the
   *  lanes of a subgroup split K (their loads adjacent: what a GPU's memory wants; only on the subgroups path);
   *  false, a thread per four columns (a CPU adapter's lanes are SIMD lanes, and a sum across them costs more
   *  than it saves). By default lanes on the subgroups path of an adapter that is not a fallback (CPU) one; the
   *  tests run both on one adapter. */
  matvecLanes?: boolean;
}

/** How this runtime's kernels reduce across a workgroup, and why (Gpu.reductions). */
export interface Reductions {
  path: ReductionPath;
  why: string;
  /** Threads per subgroup the probe found at each workgroup size it checked (where it ran). */
  sizes?: Record<number, number>;
}

/** The workgroup sizes the subgroup probe checks: wg_reduce's callers use 64 and 256. */
const PROBE_SIZES = [32, 64, 128, 256];

/** A module whose entry point probe<n> writes, per thread of one n-thread workgroup, its subgroup's thread count
 *  when the subgroup is the aligned block of local_invocation_index the prelude's wg_reduce takes it for, else 0. */
const PROBE_WGSL = `enable subgroups;
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
fn probe(lid: u32, n: u32, at: u32) {
  let c = subgroupAdd(1u);
  let lo = subgroupMin(lid);
  let hi = subgroupMax(lid);
  let aligned = lo == lid - lid % c && hi == lo + c - 1u && n % c == 0u && n / c <= 64u;
  out[at + lid] = select(0u, c, aligned);
}
${PROBE_SIZES.map((n, i) => `@compute @workgroup_size(${n}) fn probe${n}(@builtin(local_invocation_index) lid: u32) { probe(lid, ${n}u, ${PROBE_SIZES.slice(0, i).reduce((a, b) => a + b, 0)}u); }`).join('\n')}
`;

export type Defines = Record<string, number | boolean>;

export { ALIGN, alignUp };

/** The bytes of `kernel`'s params struct with its fields by name (`_...` padding fields 0), rounded up to 16 bytes. */
export function packParams(kernel: Pick<Kernel, 'name' | 'params'>, values: Readonly<Record<string, number>>): ArrayBuffer {
  const fields = kernel.params;
  for (const k of Object.keys(values)) if (!fields.some((f) => f.name === k)) throw new GpuError(`${kernel.name}: its params have no field ${k}`);
  const buf = new ArrayBuffer(Math.max(4, alignUp(fields.length, 4)) * 4),
    view = new DataView(buf);
  fields.forEach(({ name, type }, i) => {
    const v = values[name];
    if (v === undefined && !name.startsWith('_')) throw new GpuError(`${kernel.name}: param ${name} is missing`);
    if (type === 'f32') view.setFloat32(i * 4, v ?? 0, true);
    else if (type === 'i32') view.setInt32(i * 4, v ?? 0, true);
    else view.setUint32(i * 4, v ?? 0, true);
  });
  return buf;
}

/** Elements each thread of an element-wise kernel takes (the prelude's nth: k < 4). */
export const ELEMENTS_PER_THREAD = 4;

export class Gpu {
  readonly features: Set<string>;
  readonly limits: GPUSupportedLimits;
  /** Bytes of GPU buffers this runtime has allocated and not destroyed. */
  allocatedBytes = 0;
  private readonly bindingLimit: number;
  private readonly bufferLimit: number;
  private kernels = new Map<string, Promise<Kernel>>();
  private layouts = new Map<string, GPUBindGroupLayout>();
  private dummy: GPUBuffer | undefined;
  private staging = new Map<number, GPUBuffer>();
  /** Set once the device is lost: every GPU call after that fails with it. */
  lost?: GpuLostError;
  /** Resolves when the device is lost. */
  readonly whenLost: Promise<GpuLostError>;
  private readonly wantSubgroups: boolean;
  /** Whether frozen linear weights are stored and read as f16: the device has 'shader-f16' and the options did not
   *  turn it off (GpuOptions.f16Weights). A model asks for it (Transformer's frozenF16); nothing else changes. */
  readonly f16Weights: boolean;
  private reduction?: Promise<Reductions>;
  private decided?: Reductions;

  constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterSummary,
    private readonly source: ShaderSource,
    opts: GpuOptions = {},
  ) {
    this.bindingLimit = Math.min(opts.maxBinding ?? Infinity, device.limits.maxStorageBufferBindingSize);
    this.bufferLimit = Math.min(opts.maxBuffer ?? Infinity, device.limits.maxBufferSize);
    this.features = new Set(device.features as unknown as Iterable<string>);
    this.limits = device.limits;
    this.whenLost = device.lost.then((info) => (this.lost = new GpuLostError(info.reason, info.message)));
    this.wantSubgroups = opts.subgroups !== false;
    this.f16Weights = this.features.has('shader-f16') && opts.f16Weights !== false;
    this.wantLanes = opts.matvecLanes ?? !adapter.fallback;
  }

  private readonly wantLanes: boolean;

  /** Threads per subgroup of a 64-thread workgroup where decoding's matrix-vector products over B's rows split K
   *  over a subgroup's lanes (GpuOptions.matvecLanes; after `await gpu.reductions()`), else 0. */
  get matvecLanes(): number {
    const S = this.wantLanes && this.subgroups ? (this.decided?.sizes?.[64] ?? 0) : 0;
    return S > 0 && 64 % S === 0 ? S : 0; // whole subgroups of the 64 threads (a subgroup wider than them: not used)
  }

  /**
   * How kernels reduce across a workgroup (the prelude's wg_reduce), decided here and nowhere else, once per
   * runtime, before its first kernel compiles: with subgroup operations when the device has 'subgroups', the
   * options did not turn them off, and a probe finds the subgroups of 1-D workgroups of 32 to 256 threads to be
   * aligned blocks of local_invocation_index (which wg_reduce relies on and WGSL does not promise; every driver
   * we know lays them out so); else with the workgroup-memory tree.
   */
  reductions(): Promise<Reductions> {
    this.reduction ??= this.decideReductions().then((r) => (this.decided = r));
    return this.reduction;
  }

  /** The path of reductions() once it has resolved (every kernel compiles after it has). */
  get subgroups(): boolean {
    if (!this.decided) throw new GpuError('the reduction path is not decided yet: await gpu.reductions() first');
    return this.decided.path === 'subgroups';
  }

  private async decideReductions(): Promise<Reductions> {
    if (!this.features.has('subgroups')) return { path: 'workgroup', why: "the device has no 'subgroups' feature" };
    if (!this.wantSubgroups) return { path: 'workgroup', why: 'subgroups turned off (GpuOptions.subgroups: false)' };
    const d = this.device,
      total = PROBE_SIZES.reduce((a, b) => a + b, 0);
    if (this.lost) throw this.lost;
    let read: GPUBuffer | undefined, out: GPUBuffer | undefined;
    try {
      // everything is created and submitted inside error scopes popped before anything is awaited (see compile)
      pushScopes(d);
      const module = d.createShaderModule({ label: 'subgroup probe', code: PROBE_WGSL });
      out = d.createBuffer({ label: 'subgroup probe', size: total * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
      read = d.createBuffer({ label: 'subgroup probe read', size: total * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const layout = this.layout(['w']);
      const pipelineLayout = d.createPipelineLayout({ label: 'subgroup probe', bindGroupLayouts: [layout] });
      const group = d.createBindGroup({ label: 'subgroup probe', layout, entries: [{ binding: 0, resource: { buffer: out } }] });
      const enc = d.createCommandEncoder({ label: 'subgroup probe' });
      const pass = enc.beginComputePass({ label: 'subgroup probe' });
      for (const n of PROBE_SIZES) {
        pass.setPipeline(d.createComputePipeline({ label: `subgroup probe ${n}`, layout: pipelineLayout, compute: { module, entryPoint: `probe${n}` } }));
        pass.setBindGroup(0, group);
        pass.dispatchWorkgroups(1);
      }
      pass.end();
      enc.copyBufferToBuffer(out, 0, read, 0, total * 4);
      d.queue.submit([enc.finish()]);
      const scopes = popScopes(d);
      const messages = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error').map((m) => m.message);
      const err = await scopes;
      if (this.lost) throw this.lost;
      if (messages.length || err) return { path: 'workgroup', why: `the subgroup probe failed: ${messages.join('; ') || err!.message}` };
      await read.mapAsync(GPUMapMode.READ);
      const got = new Uint32Array(read.getMappedRange().slice(0));
      read.unmap();
      const sizes: Record<number, number> = {};
      let at = 0;
      for (const n of PROBE_SIZES) {
        const c = got.subarray(at, at + n);
        at += n;
        if (!c.every((x) => x === c[0] && x > 0)) {
          return {
            path: 'workgroup',
            why: `subgroups of a ${n}-thread workgroup are not aligned blocks of its threads (per-thread result ${[...c.slice(0, 8)].join(',')}, ...)`,
            sizes,
          };
        }
        sizes[n] = c[0]!;
      }
      return { path: 'subgroups', why: `subgroups of ${[...new Set(Object.values(sizes))].join(' or ')} threads, aligned blocks of each workgroup`, sizes };
    } catch (e) {
      if (this.lost) throw this.lost;
      return { path: 'workgroup', why: `the subgroup probe failed: ${(e as Error).message}` };
    } finally {
      out?.destroy();
      read?.destroy();
    }
  }

  /** Largest storage binding the engine uses: the device's limit, or less when asked (tests of the split paths). */
  get maxBinding(): number {
    return this.bindingLimit;
  }

  /** Largest buffer the engine creates: the device's maxBufferSize, or less when asked (tests of the split tables). */
  get maxBuffer(): number {
    return this.bufferLimit;
  }

  /**
   * Runs `fn` inside validation, out-of-memory and internal error scopes; any error becomes a GpuError naming
   * `label`. Error scopes are one stack per device, so a scope held open across an `await` would catch, or lose
   * to another's pop, the errors of whatever else ran meanwhile (the Rank tab sampling while a training step
   * runs). So `fn` is synchronous (encoding and submitting work: nearly every check) and its scopes are popped
   * before anything else can run; work that awaits goes through checkAsync.
   */
  async check<T>(label: string, fn: () => T extends PromiseLike<unknown> ? never : T): Promise<T> {
    if (this.lost) throw this.lost;
    const d = this.device;
    pushScopes(d);
    let out: T;
    try {
      out = fn();
    } catch (e) {
      await this.closeScopes(label, popScopes(d));
      throw e;
    }
    const popped = popScopes(d); // before anything else runs
    if (out instanceof Promise) {
      void out.catch(() => undefined);
      throw new GpuError(`${label}: Gpu.check runs synchronous work; this returned a promise (use checkAsync)`);
    }
    await this.closeScopes(label, popped);
    return out;
  }

  /**
   * `check` for work that awaits (building a plan, a timed run): its scopes stay open across its awaits, so
   * such checks run one at a time, each started when the one before has ended. A synchronous `check` inside
   * one nests properly (its scopes are pushed and popped with nothing in between); one checkAsync inside
   * another would wait for itself: they must not nest. (This queue once seemed to hang the Rank tab's
   * uncertainty selection. It did not: every check ended; the end-to-end test waited for a margin on each prompt
   * drawn ahead, and in those runs one prompt's three answers came out identical, which have none.)
   */
  checkAsync<T>(label: string, fn: () => Promise<T>): Promise<T> {
    const turn = this.asyncChecks.then(async () => {
      if (this.lost) throw this.lost;
      const d = this.device;
      pushScopes(d);
      let result: T;
      try {
        result = await fn();
      } finally {
        await this.closeScopes(label, popScopes(d));
      }
      return result;
    });
    this.asyncChecks = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  private asyncChecks: Promise<void> = Promise.resolve();

  /** Awaits scopes already popped; a lost device, else the first error, is thrown naming `label`. */
  private async closeScopes(label: string, popped: Promise<GPUError | null>): Promise<void> {
    const err = await popped;
    if (this.lost) throw this.lost; // a lost device reports no errors: its results are not there
    if (err) throw scopeError(label, err);
  }

  /** WGSL text of `file` as compiled: `defines` as constants and the prelude prepended (composeShader), on this
   *  runtime's reduction path (after `await gpu.reductions()`; every kernel compiles after it). */
  shaderText(file: string, defines: Defines = {}): string {
    return this.composed(file, defines).code;
  }

  private composed(file: string, defines: Defines): ComposedShader {
    return composeShader(file, this.source(file), this.source(PRELUDE), defines, this.subgroups ? 'subgroups' : 'workgroup');
  }

  layout(kinds: BindingKind[]): GPUBindGroupLayout {
    const key = kinds.join('');
    let l = this.layouts.get(key);
    if (!l) {
      l = this.device.createBindGroupLayout({
        label: `layout:${key}`,
        entries: kinds.map((k, binding) => ({
          binding,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: k === 'u' ? 'uniform' : k === 'r' ? 'read-only-storage' : 'storage' },
        })),
      });
      this.layouts.set(key, l);
    }
    return l;
  }

  /** Compiles (once) entry point `entry` of `shaders/file` with the given defines and an explicit layout,
   *  its binding kinds and uniform fields read from the shader's text (entryLayout). */
  kernel(file: string, entry: string, defines?: Defines): Promise<Kernel>;
  /** With `kinds`: the layout the caller expects, checked against the shader's. */
  kernel(file: string, entry: string, kinds: BindingKind[], defines?: Defines): Promise<Kernel>;
  kernel(file: string, entry: string, a: BindingKind[] | Defines = {}, b: Defines = {}): Promise<Kernel> {
    const expect = Array.isArray(a) ? a : undefined,
      defines = Array.isArray(a) ? b : a;
    const key = `${file}:${entry}:${JSON.stringify(defines)}`;
    let k = this.kernels.get(key);
    if (!k) {
      const name = `${file.replace(/\.wgsl$/, '')}.${entry}${Object.keys(defines).length ? JSON.stringify(defines) : ''}`;
      k = this.compile(name, file, entry, defines);
      this.kernels.set(key, k);
    }
    if (!expect) return k;
    return k.then((kernel) => {
      if (kernel.kinds.join('') !== expect.join(''))
        throw new GpuError(`kernel ${kernel.name}: binds ${kernel.kinds.join('')} in the shader, ${expect.join('')} expected`);
      return kernel;
    });
  }

  private async compile(name: string, file: string, entry: string, defines: Defines): Promise<Kernel> {
    await this.reductions();
    let code: string, where: (line: number) => string, parsed: EntryLayout;
    try {
      ({ code, where } = this.composed(file, defines));
      parsed = entryLayout(code, entry);
    } catch (e) {
      throw new GpuError(`kernel ${name}: ${(e as Error).message}`);
    }
    const { kinds, params } = parsed;
    const d = this.device;
    if (this.lost) throw this.lost;
    // The module and the layouts are created inside error scopes popped before anything is awaited, so kernels
    // compiled at the same time never take each other's errors; a WGSL error is reported from the compilation
    // messages, at lines of the files they came from (the shader, the defines or the prelude) rather than of `code`.
    pushScopes(d);
    const module = d.createShaderModule({ label: name, code });
    const layout = this.layout(kinds);
    const pipelineLayout = d.createPipelineLayout({ label: name, bindGroupLayouts: [layout] });
    const scopes = popScopes(d);
    const info = await module.getCompilationInfo();
    const err = await scopes;
    if (this.lost) throw this.lost;
    if (info.messages.some((m) => m.type === 'error')) {
      const text = info.messages.filter((m) => m.type !== 'warning').map((m) => `${where(m.lineNum)}: ${m.type === 'info' ? 'note: ' : ''}${m.message}`);
      throw new GpuError(`kernel ${name}: WGSL error: ${text.join('; ')}`);
    }
    if (err) throw scopeError(`kernel ${name}`, err);
    let pipeline: GPUComputePipeline;
    try {
      // an invalid pipeline rejects here (GPUPipelineError), never reaching an error scope
      pipeline = await d.createComputePipelineAsync({ label: name, layout: pipelineLayout, compute: { module, entryPoint: entry } });
    } catch (e) {
      throw this.lost ?? new GpuError(`kernel ${name}: pipeline creation failed: ${(e as Error).message}`);
    }
    if (this.lost) throw this.lost;
    return { name, pipeline, layout, kinds, params };
  }

  buffer(bytes: number, label: string, usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST): GPUBuffer {
    const size = Math.max(16, alignUp(bytes, 16));
    if (size > this.maxBuffer) {
      throw new GpuError(`${label}: a buffer of ${size} bytes exceeds this adapter's maxBufferSize (${this.maxBuffer})`);
    }
    const b = this.device.createBuffer({ label, size, usage });
    this.allocatedBytes += size;
    return b;
  }

  /** A fresh buffer holding `n` f32/u32 elements as a View. */
  tensor(n: number, label: string): View {
    return { buf: this.buffer(n * 4, label), off: 0, n };
  }

  destroy(b: GPUBuffer): void {
    this.allocatedBytes -= b.size;
    b.destroy();
  }

  /** A 16-byte buffer bound where a kernel's optional input is absent. */
  get none(): View {
    if (!this.dummy) this.dummy = this.buffer(16, 'none');
    return { buf: this.dummy, off: 0, n: 4 };
  }

  write(v: View, data: Float32Array | Uint32Array | Int32Array, elemOffset = 0): void {
    if (data.length + elemOffset > v.n) throw new GpuError(`write of ${data.length} elements into a view of ${v.n}`);
    this.device.queue.writeBuffer(v.buf, v.off + elemOffset * 4, data.buffer, data.byteOffset, data.byteLength);
  }

  /**
   * A uniform buffer of `kernel`'s params struct, its fields by name: u32 and i32 fields as integers, f32
   * fields as floats; fields named `_...` (padding) are 0. The struct's words, rounded up to 16 bytes.
   */
  params(kernel: Kernel, values: Readonly<Record<string, number>>, label = kernel.name): GPUBuffer {
    const buf = packParams(kernel, values);
    const b = this.buffer(buf.byteLength, label, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.device.queue.writeBuffer(b, 0, buf);
    return b;
  }

  /** Rewrites a buffer made by `params` (e.g. a learning rate that changes every step; no allocation). */
  writeParams(b: GPUBuffer, kernel: Kernel, values: Readonly<Record<string, number>>): void {
    this.device.queue.writeBuffer(b, 0, packParams(kernel, values));
  }

  /** Binds views (and uniform buffers) to a kernel; checks binding-size limits and alignment. */
  call(kernel: Kernel, bindings: (View | GPUBuffer)[], workgroups: [number, number?, number?]): Call {
    if (bindings.length !== kernel.kinds.length) throw new GpuError(`${kernel.name}: ${bindings.length} bindings for ${kernel.kinds.length} slots`);
    const entries = bindings.map((b, binding) => {
      if (!('buf' in b)) return { binding, resource: { buffer: b } };
      const size = alignUp(b.n * 4, 4);
      if (b.off % ALIGN !== 0) throw new GpuError(`${kernel.name}: binding ${binding} offset ${b.off} is not ${ALIGN}-byte aligned`);
      if (size > this.maxBinding)
        throw new GpuError(`${kernel.name}: binding ${binding} is ${size} bytes, over maxStorageBufferBindingSize (${this.maxBinding}); split it`);
      return { binding, resource: { buffer: b.buf, offset: b.off, size: Math.max(size, 4) } };
    });
    const [x, y = 1, z = 1] = workgroups;
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) throw new GpuError(`${kernel.name}: dispatch ${x}x${y}x${z} exceeds ${max} workgroups per dimension`);
    const group = this.device.createBindGroup({ label: kernel.name, layout: kernel.layout, entries });
    return { kernel, group, workgroups: [x, y, z], uniforms: bindings.filter((b): b is GPUBuffer => !('buf' in b)) };
  }

  /** Frees the uniform buffers of calls that will not run again (each once, however many calls bind it). */
  release(calls: Iterable<Call>): void {
    const seen = new Set<GPUBuffer>();
    for (const c of calls) for (const u of c.uniforms) seen.add(u);
    for (const u of seen) this.destroy(u);
  }

  record(pass: GPUComputePassEncoder, calls: readonly Call[]): void {
    for (const c of calls) {
      if (c.workgroups[0] === 0 || c.workgroups[1] === 0 || c.workgroups[2] === 0) continue;
      pass.setPipeline(c.kernel.pipeline);
      pass.setBindGroup(0, c.group);
      pass.dispatchWorkgroups(c.workgroups[0], c.workgroups[1], c.workgroups[2]);
    }
  }

  /** Records all calls into one pass and submits once. */
  run(calls: readonly Call[], label = 'step'): void {
    const enc = this.device.createCommandEncoder({ label });
    const pass = enc.beginComputePass({ label });
    this.record(pass, calls);
    pass.end();
    this.device.queue.submit([enc.finish()]);
  }

  private timer?: { qs: GPUQuerySet; resolve: GPUBuffer; read: GPUBuffer };

  /**
   * Runs calls as one pass and measures it: wall time until the queue is idle, and GPU time from
   * timestamp queries at the pass's start and end when the adapter has 'timestamp-query'.
   */
  async timeRun(calls: readonly Call[], label = 'timed'): Promise<{ wallMs: number; gpuMs?: number }> {
    const ts = this.features.has('timestamp-query');
    if (ts && !this.timer) {
      this.timer = {
        qs: this.device.createQuerySet({ type: 'timestamp', count: 2 }),
        resolve: this.device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }),
        read: this.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
      };
    }
    const t0 = performance.now();
    const enc = this.device.createCommandEncoder({ label });
    const pass = enc.beginComputePass(
      ts ? { label, timestampWrites: { querySet: this.timer!.qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : { label },
    );
    this.record(pass, calls);
    pass.end();
    if (ts) {
      enc.resolveQuerySet(this.timer!.qs, 0, 2, this.timer!.resolve, 0);
      enc.copyBufferToBuffer(this.timer!.resolve, 0, this.timer!.read, 0, 16);
    }
    this.device.queue.submit([enc.finish()]);
    await this.device.queue.onSubmittedWorkDone();
    const wallMs = performance.now() - t0;
    if (!ts) return { wallMs };
    await this.timer!.read.mapAsync(GPUMapMode.READ);
    const [a, b] = new BigUint64Array(this.timer!.read.getMappedRange().slice(0));
    this.timer!.read.unmap();
    const gpuMs = Number(b! - a!) / 1e6;
    return { wallMs, gpuMs: gpuMs > 0 ? gpuMs : undefined };
  }

  /** Copies a view back to the CPU (waits for the queue). */
  async read(v: View, n = v.n, elemOffset = 0): Promise<Float32Array> {
    return this.readAll([{ buf: v.buf, off: v.off + elemOffset * 4, n }]);
  }

  /** Copies views back to the CPU one after the other into one array, through one staging buffer and one
   *  map when they fit one (a row of logits in vocabulary chunks comes back in one round trip). */
  async readAll(views: View[]): Promise<Float32Array> {
    const total = views.reduce((s, v) => s + v.n, 0);
    const out = new Float32Array(total);
    // staging buffers are kept by power-of-two size; one never exceeds the largest buffer (a huge read goes in pieces)
    const cap = 2 ** Math.floor(Math.log2(this.maxBuffer));
    let at = 0,
      i = 0,
      skip = 0; // views[i] from element `skip` on is still to copy
    while (at < total) {
      const want = Math.min((total - at) * 4, cap);
      const size = Math.max(256, 2 ** Math.ceil(Math.log2(want)));
      let st = this.staging.get(size);
      if (!st || st.mapState !== 'unmapped') {
        st = this.device.createBuffer({ label: `staging${size}`, size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        this.staging.set(size, st);
      }
      const enc = this.device.createCommandEncoder({ label: 'readback' });
      let bytes = 0;
      while (i < views.length && bytes < want) {
        const v = views[i]!;
        const n = Math.min(v.n - skip, (want - bytes) / 4);
        if (n > 0) enc.copyBufferToBuffer(v.buf, v.off + skip * 4, st, bytes, alignUp(n * 4, 4));
        bytes += n * 4;
        skip += n;
        if (skip >= v.n) (i++, (skip = 0));
      }
      this.device.queue.submit([enc.finish()]);
      try {
        await st.mapAsync(GPUMapMode.READ, 0, bytes);
      } catch (e) {
        throw this.lost ?? (await Promise.race([this.whenLost, new Promise((r) => setTimeout(r, 100))])) ?? e; // lost: say so
      }
      out.set(new Float32Array(st.getMappedRange(0, bytes)), at);
      st.unmap();
      at += bytes / 4;
    }
    return out;
  }

  async readU32(v: View, n = v.n): Promise<Uint32Array> {
    const f = await this.read(v, n);
    return new Uint32Array(f.buffer, f.byteOffset, n);
  }

  /** The workgroups of an element-wise kernel over n elements, four a thread (the prelude's nth). */
  elementGrid(n: number): [number, number] {
    return this.grid(Math.ceil(n / (256 * ELEMENTS_PER_THREAD)));
  }

  /** Splits `total` workgroups into a 2-D grid within the per-dimension limit; shaders rebuild the index as y * x_count + x. */
  grid(total: number): [number, number] {
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (total <= max) return [total, 1];
    const y = Math.ceil(total / max);
    return [Math.ceil(total / y), y];
  }
}
