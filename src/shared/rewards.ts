// Reward functions for GRPO and RLOO, as a user writes them in JavaScript. The shape is TRL's
// (`reward_func(prompts, completions, completion_ids, **kwargs) -> list[float | None]`) with the
// arguments in one object, JavaScript having no keyword arguments:
//
//   export default function concise({ prompts, completions, completion_ids }) {
//     return completions.map((c) => (c.split(/\s+/).filter(Boolean).length <= 12 ? 1 : 0));
//   }
//
// One number per completion, or null where the function does not apply (TRL's None): a completion no
// function scored has advantage 0. A module may export several functions (each named export, or an
// array or object as its default export); each is logged as rewards/<name>/mean. Built-in rules (a
// name and an argument, `max_words:12`) serve the command line and the experiment without a file.

/** What a reward function receives: the batch's prompts (as shown to the model), completions (decoded) and their token ids. */
export interface RewardInput {
  prompts: string[];
  completions: string[];
  completion_ids: number[][];
}
export type RewardFn = (input: RewardInput) => (number | null)[] | Promise<(number | null)[]>;
export interface RewardFunction {
  name: string;
  fn: RewardFn;
  /** Where it came from (a file, "built-in"), for messages and the model card. */ origin: string;
}

const wordsOf = (s: string) => s.split(/\s+/).filter(Boolean);

/** The built-in rules: name -> (argument) -> reward function. */
export const BUILTIN_REWARDS: Record<string, { help: string; make: (arg: string | undefined) => RewardFn }> = {
  max_words: {
    help: 'max_words:N: 1 for a completion of at most N words, falling linearly to 0 at 2N words',
    make: (arg) => {
      const n = Number(arg);
      if (!(Number.isInteger(n) && n >= 1)) throw new Error(`max_words needs a whole number of words >= 1, as max_words:12 (got "${arg ?? ''}")`);
      return ({ completions }) =>
        completions.map((c) => {
          const w = wordsOf(c).length;
          return w <= n ? 1 : Math.max(0, 1 - (w - n) / n);
        });
    },
  },
  contains: {
    help: 'contains:REGEX: 1 when the completion matches the regular expression (case-insensitive), else 0',
    make: (arg) => {
      if (!arg) throw new Error('contains needs a regular expression, as contains:thank(s| you)');
      let re: RegExp;
      try {
        re = new RegExp(arg, 'i');
      } catch (e) {
        throw new Error(`contains:${arg}: not a regular expression (${(e as Error).message})`);
      }
      return ({ completions }) => completions.map((c) => (re.test(c) ? 1 : 0));
    },
  },
  no_repeat: {
    help: 'no_repeat: the share of distinct words (1 = no word repeated, near 0 = one word over and over)',
    make:
      () =>
      ({ completions }) =>
        completions.map((c) => {
          const w = wordsOf(c.toLowerCase());
          return w.length ? new Set(w).size / w.length : 0;
        }),
  },
};

/** A built-in rule from its spec, `name` or `name:argument`. */
export function builtinReward(spec: string): RewardFunction {
  const i = spec.indexOf(':');
  const name = i < 0 ? spec : spec.slice(0, i),
    arg = i < 0 ? undefined : spec.slice(i + 1);
  const b = BUILTIN_REWARDS[name];
  if (!b) throw new Error(`"${spec}" is not a built-in reward (${Object.keys(BUILTIN_REWARDS).join(', ')}) nor a .js/.mjs file`);
  return { name, fn: b.make(arg), origin: `built-in ${spec}` };
}

/**
 * The reward functions a JavaScript module exports: every exported function (named by its export, the
 * default by the function's own name, else the file's), or the functions in a default-exported array or
 * object. `file` names the module in errors.
 */
export function rewardFunctionsOf(mod: Record<string, unknown>, file: string): RewardFunction[] {
  const stem = file.replace(/^.*[\\/]/, '').replace(/\.[cm]?js$/i, '') || 'reward';
  const out: RewardFunction[] = [];
  const add = (name: string, v: unknown) => {
    if (typeof v !== 'function')
      throw new Error(
        `${file}: export "${name}" is not a function; a reward function takes { prompts, completions, completion_ids } and returns one number (or null) per completion`,
      );
    out.push({ name, fn: v as RewardFn, origin: file });
  };
  for (const [k, v] of Object.entries(mod)) {
    if (k === 'default') {
      if (typeof v === 'function') add(v.name && v.name !== 'default' ? v.name : stem, v);
      else if (Array.isArray(v)) v.forEach((f, j) => add(typeof f === 'function' && f.name ? f.name : `${stem}_${j}`, f));
      else if (v && typeof v === 'object') for (const [n, f] of Object.entries(v)) add(n, f);
      else throw new Error(`${file}: the default export is not a function, an array or an object of functions`);
    } else if (typeof v === 'function') add(k, v);
  }
  if (!out.length) throw new Error(`${file}: exports no reward function`);
  const dup = out.find((f, j) => out.findIndex((g) => g.name === f.name) !== j);
  if (dup) throw new Error(`${file}: two reward functions are named "${dup.name}"`);
  return out;
}

/** Calls a reward function and checks what it returned: one finite number or null per completion. */
export async function callReward(f: RewardFunction, input: RewardInput): Promise<(number | null)[]> {
  let s: unknown;
  try {
    s = await f.fn(input);
  } catch (e) {
    throw new Error(`reward function "${f.name}" (${f.origin}) failed: ${(e as Error)?.message ?? String(e)}`);
  }
  return checkScores(s, input.completions.length, `reward function "${f.name}" (${f.origin})`);
}

/** What a reward function returned, checked: one finite number or null (undefined counts as null) for each of `n` completions; `who` names it in the error. */
export function checkScores(s: unknown, n: number, who: string): (number | null)[] {
  if (!Array.isArray(s)) throw new Error(`${who} returned ${s === null ? 'null' : typeof s}, not an array of ${n} scores`);
  if (s.length !== n) throw new Error(`${who} returned ${s.length} scores for ${n} completions`);
  return s.map((x, i) => {
    if (x === null || x === undefined) return null;
    if (typeof x !== 'number' || !Number.isFinite(x))
      throw new Error(`${who} gave completion ${i} the score ${JSON.stringify(x) ?? String(x)}: a reward is a finite number, or null where it does not apply`);
    return x;
  });
}
