// GRPO and RLOO from the command line: reward functions written in JavaScript (and built-in rules, and a
// reward model) score the completions; TRL's metric names and completions table; a resumed run ends with
// the weights of an uninterrupted one; a reward function that misbehaves is named in one line.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { parseSafetensors, readTensorF32 } from '../src/io/safetensors.ts';

const dir = mkdtempSync(join(tmpdir(), 'grpo-cli-'));
const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'dog', 'ran', 'far', 'away', 'big', 'red'];
let x = 11;
const say = (n: number) => Array.from({ length: n }, () => words[(x = (x * 1103515245 + 12345) % 2 ** 31) % words.length]).join(' ');
const PROMPTS = ['the cat sat', 'a dog ran', 'big red mat', 'the cat ran far', 'a mat away', 'the big dog', 'red cat on a mat', 'sat on the dog'];
writeFileSync(join(dir, 'prompts.jsonl'), PROMPTS.map((prompt) => JSON.stringify({ prompt })).join('\n') + '\n');
writeFileSync(
  join(dir, 'rank.jsonl'),
  Array.from({ length: 12 }, () => JSON.stringify({ prompt: say(3), completions: [say(2), say(5), say(8)] })).join('\n') + '\n',
);
// two functions in one module: one scores every completion, one applies only to prompts that mention a cat
writeFileSync(
  join(dir, 'rewards.mjs'),
  `
export function cats({ completions }) { return completions.map((c) => (c.match(/cat/g) ?? []).length / 4); }
export const about_the_cat = ({ prompts, completions, completion_ids }) =>
  prompts.map((p, i) => (p.includes('cat') ? (completion_ids[i].length < 6 ? 1 : 0) : null));
`,
);
writeFileSync(join(dir, 'bad.mjs'), 'export default function broken({ completions }) { return completions.slice(1); }\n');
const model = 'tests/fixtures/gpt2-tiny';
const common = [
  '--model',
  model,
  '--prompts',
  join(dir, 'prompts.jsonl'),
  '--seq-len',
  '24',
  '--lora-rank',
  '4',
  '--max-completion-length',
  '8',
  '--seed',
  '2',
];
const lines = (d: string, f: string) =>
  readFileSync(join(d, f), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('grpo and rloo from the command line', () => {
  it('grpo: JavaScript reward functions, a built-in rule and a reward model; TRL-named metrics and the completions table; resume is bit for bit', async () => {
    const rm = join(dir, 'rm');
    const r0 = await cli(['rm', '--model', model, '--data', join(dir, 'rank.jsonl'), '--out', rm, '--lora-rank', '4', '--max-steps', '2', '--seq-len', '24']);
    expect(r0.code, r0.stderr).toBe(0);
    const a = join(dir, 'grpo-a'),
      b = join(dir, 'grpo-b');
    const args = [
      ...common,
      '--reward-fn',
      join(dir, 'rewards.mjs'),
      '--reward-fn',
      'max_words:3',
      '--reward',
      rm,
      '--reward-weights',
      '1,1,0.5,0.1',
      '--beta',
      '0.04',
      '--max-steps',
      '3',
    ];
    const r = await cli(['grpo', ...args, '--out', a]);
    expect(r.code, r.stderr).toBe(0);
    const m = lines(a, 'metrics.jsonl');
    expect(m.map((l) => l.step)).toEqual([1, 2, 3]);
    for (const k of [
      'reward',
      'reward_std',
      'kl',
      'entropy',
      'frac_reward_zero_std',
      'clip_ratio/region_mean',
      'completions/mean_length',
      'completions/clipped_ratio',
      'loss',
      'grad_norm',
      'learning_rate',
      'rewards/cats/mean',
      'rewards/cats/std',
      'rewards/max_words/mean',
      'rewards/reward_model/mean',
    ]) {
      expect(typeof m[2]![k], k).toBe('number');
    }
    // a function that applies to none of a batch's prompts has no mean there (TRL's NaN): left out, never null
    expect(m.some((l) => typeof l['rewards/about_the_cat/mean'] === 'number')).toBe(true);
    expect(m.every((l) => Object.values(l).every((v) => typeof v === 'number'))).toBe(true);
    const c = lines(a, 'completions.jsonl') as {
      step: number;
      prompt: string;
      completion: string;
      rewards: Record<string, number | null>;
      reward: number;
      advantage: number;
    }[];
    expect(c).toHaveLength(3 * 4 * 4); // steps x prompts x num_generations
    // a module's functions in its namespace's order (alphabetical), then the rules, then the reward model
    expect(Object.keys(c[0]!.rewards)).toEqual(['about_the_cat', 'cats', 'max_words', 'reward_model']);
    // the weighted sum over the functions that apply (null: does not)
    for (const row of c) {
      const w = { cats: 1, about_the_cat: 1, max_words: 0.5, reward_model: 0.1 } as Record<string, number>;
      const want = Object.entries(row.rewards).reduce((s, [k, v]) => s + (v === null ? 0 : w[k]! * v), 0);
      expect(row.reward).toBeCloseTo(want, 4);
      expect(row.rewards.about_the_cat === null).toBe(!row.prompt.includes('cat'));
    }
    const cfg = JSON.parse(readFileSync(join(a, 'adapter_config.json'), 'utf8')) as { task_type: string };
    expect(cfg.task_type).toBe('CAUSAL_LM');
    // stopped after one step and resumed: the same adapter as the uninterrupted run
    expect((await cli(['grpo', ...args, '--out', b, '--stop-after', '1'])).code).toBe(0);
    const rb = await cli(['grpo', ...args, '--out', b, '--resume']);
    expect(rb.code, rb.stderr).toBe(0);
    const sa = parseSafetensors(readFileSync(join(a, 'adapter_model.safetensors')), 'a'),
      sb = parseSafetensors(readFileSync(join(b, 'adapter_model.safetensors')), 'b');
    for (const name of sa.tensors.keys()) expect(readTensorF32(sb, name), name).toEqual(readTensorF32(sa, name));
    expect(lines(b, 'metrics.jsonl').map((l) => l.reward)).toEqual(m.map((l) => l.reward));
  });

  it('rloo: a built-in rule, num_generations 2 by default, the KL folded in with beta 0.05', async () => {
    const o = join(dir, 'rloo');
    const r = await cli(['rloo', ...common, '--reward-fn', 'max_words:4', '--max-steps', '2', '--out', o]);
    expect(r.code, r.stderr).toBe(0);
    const m = lines(o, 'metrics.jsonl');
    expect(typeof m[1]!.kl).toBe('number');
    expect(lines(o, 'completions.jsonl')).toHaveLength(2 * 8 * 2); // steps x batch 8 x 2 generations
  });

  it('refuses a run without a reward, and names a reward function that returns the wrong number of scores', async () => {
    const none = await cli(['grpo', ...common, '--out', join(dir, 'none')]);
    expect(none.code).toBe(2);
    expect(none.stderr.trim().split('\n')).toEqual([expect.stringMatching(/--reward-fn: .*need reward functions, a reward model/)]);
    const rule = await cli(['grpo', ...common, '--reward-fn', 'max_wordz:3', '--out', join(dir, 'rule')]);
    expect(rule.code).toBe(2);
    expect(rule.stderr).toMatch(/"max_wordz:3" is not a built-in reward \(max_words, contains, no_repeat\)/);
    const bad = await cli(['grpo', ...common, '--reward-fn', join(dir, 'bad.mjs'), '--max-steps', '1', '--out', join(dir, 'bad')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toEqual([expect.stringMatching(/reward function "broken" \(.*bad\.mjs\) returned 15 scores for 16 completions/)]);
  });
});
