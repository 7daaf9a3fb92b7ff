// The training options' one schema (src/shared/schema.ts) and what derives from it. The resolved configs
// are pinned: tests/fixtures/resolved-configs.json holds what resolveConfig gave for every stage, model
// shape and LoRA rank before the defaults moved into the schema (a stage's first case in full, the others
// as their differences from it), so moving or restating a default cannot change a run's config.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Option } from 'commander';
import { stageOptions } from '../src/cli/train.ts';
import { TRL_FIELDS, type TrlStage } from '../src/io/trl.ts';
import { resolveConfig, STAGES, type Stage, type TrainInput } from '../src/shared/config.ts';
import { GENERATE_DEFAULTS } from '../src/train/generate.ts';
import { PPO_DEFAULTS } from '../src/train/ppo-defaults.ts';
import { appliesTo, cardRows, formFields, helpOf, OPTIONS, stageDefaults, stageFlags, trlName } from '../src/shared/schema.ts';

const pinned = JSON.parse(readFileSync(new URL('./fixtures/resolved-configs.json', import.meta.url), 'utf8')) as {
  base: Record<Stage, Record<string, unknown>>;
  cases: Record<string, Record<string, unknown>>;
};
const SHAPES = [
  { maxPositions: 64, hidden: 128 },
  { maxPositions: 256, hidden: 128 },
  { maxPositions: 1024, hidden: 768 },
  { maxPositions: 2048, hidden: 4096 },
  { maxPositions: 8192, hidden: 8192 },
  { maxPositions: 128, hidden: 16 },
];
/** What a stage needs beside the defaults: PPO a reward model, GRPO and RLOO a reward function. */
const needs = (stage: Stage): TrainInput => (stage === 'ppo' ? { rewardRunId: 'rm' } : stage === 'grpo' || stage === 'rloo' ? { rewardFuncs: ['f'] } : {});

describe('resolveConfig', () => {
  it('gives every stage, model shape and LoRA rank the config it gave before the schema', () => {
    let n = 0;
    for (const stage of STAGES)
      for (const shape of SHAPES)
        for (const loraRank of [undefined, 0, 4, 8]) {
          const name = `${stage} ${shape.maxPositions}x${shape.hidden} r${loraRank ?? '-'}`;
          const want = { ...pinned.base[stage], ...(pinned.cases[name] ?? {}) };
          if (!name.endsWith(' 64x128 r-')) expect(pinned.cases[name], name).toBeDefined(); // the base case is its stage's entry in base
          expect(resolveConfig(stage, { ...(loraRank === undefined ? {} : { loraRank }), ...needs(stage) }, shape), name).toEqual(want);
          n++;
        }
    expect(n).toBe(STAGES.length * SHAPES.length * 4);
  });
});

describe('the schema', () => {
  const shape = { maxPositions: 256, hidden: 128 };

  it('has one entry per config field, and the defaults are exactly those fields', () => {
    const keys = OPTIONS.map((o) => o.key);
    expect(new Set(keys).size).toBe(keys.length);
    for (const stage of STAGES) expect(Object.keys(stageDefaults(stage, 0, shape)).sort(), stage).toEqual([...keys].sort());
    // a resolved config keeps the field order runs were saved with
    expect(Object.keys(resolveConfig('sft', {}, shape))).toEqual(Object.keys(pinned.base.sft));
  });

  it("names each option as TRL's config for that stage does", () => {
    const trl: Partial<Record<Stage, TrlStage>> = { sft: 'sft', rm: 'reward', dpo: 'dpo', grpo: 'grpo', rloo: 'rloo' }; // PPO: TRL's older PPOConfig, no longer in TRL
    let n = 0;
    for (const stage of STAGES)
      for (const o of OPTIONS) {
        const name = appliesTo(o, stage) ? trlName(o, stage) : undefined;
        if (!name || !trl[stage]) continue;
        expect(TRL_FIELDS[trl[stage]!], `${stage} ${o.key} -> ${name}`).toContain(name);
        n++;
      }
    expect(n).toBeGreaterThan(60);
  });

  it('help lines name the options they refer to, on both surfaces', () => {
    for (const stage of STAGES)
      for (const o of OPTIONS)
        for (const surface of ['cli', 'form'] as const) {
          const h = helpOf(o, stage, surface);
          expect(h, `${stage} ${o.key}`).not.toMatch(/\{\w+\}/);
          expect(h.length, `${stage} ${o.key}`).toBeGreaterThan(8);
        }
    expect(
      helpOf(
        OPTIONS.find((o) => o.key === 'steps')!,
        'sft',
        'cli',
      ),
    ).toContain('overrides --epochs');
    expect(
      helpOf(
        OPTIONS.find((o) => o.key === 'steps')!,
        'sft',
        'form',
      ),
    ).toContain('overrides epochs');
  });

  it('gives each stage its flags, one config field each, every one shown with its default', () => {
    for (const stage of STAGES) {
      const flags = stageFlags(stage);
      const attrs = flags.map((f) => new Option(f.flags).attributeName());
      expect(new Set(attrs).size, stage).toBe(attrs.length);
      for (const f of flags) expect(OPTIONS.find((o) => o.key === f.key)!.stages ?? STAGES, `${stage} ${f.flags}`).toContain(stage);
      const help = new Map(stageOptions(stage).map((o) => [o.flags, o.description]));
      for (const f of flags) expect(help.get(f.flags), `${stage} ${f.flags}`).toMatch(/\(default: [^)]+\)$/);
    }
    // the flags the CLI had before the schema, each still there
    const ppo = stageFlags('ppo').map((f) => f.flags),
      grpo = stageFlags('grpo').map((f) => f.flags);
    expect(ppo).toEqual(
      expect.arrayContaining([
        '--num-samples <K>',
        '--max-new-tokens <N>',
        '--kl-coef <C>',
        '--ptx-coef <G>',
        '--ema-decay <D>',
        '--target-kl <X>',
        '--no-early-stopping',
        '--max-steps, --steps <N>',
      ]),
    );
    expect(grpo).toEqual(
      expect.arrayContaining([
        '--num-generations <G>',
        '--max-completion-length, --max-new-tokens <N>',
        '--scale-rewards <S>',
        '--loss-type <L>',
        '--reward-weights <W,...>',
        '--mask-truncated-completions',
        '--beta <B>',
      ]),
    );
    expect(stageFlags('rloo').map((f) => f.flags)).toContain('--normalize-advantages');
    expect(stageFlags('rm').map((f) => f.flags)).toContain('--head-lr-ratio <X>');
    expect(stageFlags('sft').map((f) => f.flags)).not.toContain('--beta <B>');
  });

  it("lays out the Train form: the stage's fields, plain ones then Advanced", () => {
    const keys = (stage: Stage, advanced: boolean) =>
      formFields(stage)
        .filter((f) => f.advanced === advanced)
        .map((f) => f.key);
    expect(keys('sft', false)).toEqual(['epochs', 'steps', 'batchSize', 'lr', 'loraRank', 'seqLen']);
    expect(keys('ppo', false)).toEqual(['epochs', 'steps', 'batchSize', 'lr', 'loraRank', 'seqLen', 'rewardRunId', 'klCoef', 'numSamples', 'maxNewTokens']);
    expect(keys('grpo', false)).toEqual([
      'epochs',
      'steps',
      'batchSize',
      'lr',
      'loraRank',
      'seqLen',
      'rewardRunId',
      'numSamples',
      'maxNewTokens',
      'beta',
      'temperature',
    ]);
    expect(keys('ppo', true).slice(11, 14)).toEqual(['onNonFinite', 'temperature', 'klTarget']); // PPO's temperature under Advanced
    expect(keys('rm', true)).toContain('headLrRatio');
    expect(formFields('grpo').find((f) => f.key === 'lossType')!.options).toEqual(['grpo', 'bnpo', 'dr_grpo', 'dapo']);
    expect(formFields('rloo').find((f) => f.key === 'numSamples')!.label).toBe('completions per prompt');
  });

  it("lists on the model card what it listed before, with TRL's names", () => {
    const rows = (stage: string) =>
      cardRows(stage)
        .map(([k]) => k)
        .sort();
    const common = [
      'lr',
      'epochs',
      'steps',
      'batchSize',
      'seqLen',
      'weightDecay',
      'warmupRatio',
      'maxGradNorm',
      'loraRank',
      'loraAlpha',
      'loraDropout',
      'seed',
    ];
    expect(rows('sft')).toEqual([...common].sort());
    expect(rows('rm')).toEqual([...common].sort());
    expect(rows('some-other-stage')).toEqual([...common].sort());
    expect(rows('dpo')).toEqual([...common, 'beta', 'lossType', 'lossWeights', 'ldAlpha', 'labelSmoothing'].sort());
    expect(rows('ppo')).toEqual(
      [
        ...common,
        'numSamples',
        'maxNewTokens',
        'temperature',
        'klCoef',
        'klTarget',
        'cliprange',
        'cliprangeValue',
        'vfCoef',
        'gamma',
        'lam',
        'ppoEpochs',
        'minibatches',
        'ptxCoef',
        'emaDecay',
        'earlyStopping',
        'targetKl',
      ].sort(),
    );
    expect(cardRows('dpo').find(([k]) => k === 'beta')).toEqual(['beta', 'DPO beta', 'beta']);
    expect(cardRows('sft').find(([k]) => k === 'lr')).toEqual(['lr', 'learning rate', 'learning_rate']);
  });

  it("PpoTrainer's own defaults are the schema's but for the paper's lr, kl_coef and single pass", () => {
    const d = stageDefaults('ppo', 0, { maxPositions: 1e9, hidden: 4096 });
    const same = Object.entries(PPO_DEFAULTS).filter(([k]) => k in d && !['lr', 'klCoef', 'ppoEpochs'].includes(k));
    expect(same.length).toBeGreaterThan(15);
    for (const [k, v] of same) expect(v, k).toEqual(d[k as keyof typeof d]);
    expect(PPO_DEFAULTS.seqLen).toBe(resolveConfig('ppo', { rewardRunId: 'rm' }, { maxPositions: 4096, hidden: 128 }).seqLen); // one sequence length: 256
    expect(PPO_DEFAULTS.promptsPerStep).toBe(d.batchSize);
  });

  it("gives Generator the generation options' defaults it had", () => {
    expect(GENERATE_DEFAULTS).toEqual({ maxNewTokens: 64, numSamples: 1, seed: 0, temperature: 1, topK: 0, topP: 1, stopTokenIds: [] });
  });
});
