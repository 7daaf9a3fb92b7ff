// The training stages from the command line: outputs that load, metrics under TRL's names, malformed data
// lines reported and skipped, and a resumed run that reproduces the uninterrupted one bit for bit.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { parseSafetensors, readTensorF32 } from '../src/io/safetensors.ts';

const dir = mkdtempSync(join(tmpdir(), 'train-cli-'));
const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'dog', 'ran', 'far', 'away', 'big', 'red'];
let x = 7;
const say = (n: number) => Array.from({ length: n }, () => words[(x = (x * 1103515245 + 12345) % 2 ** 31) % words.length]).join(' ');
writeFileSync(join(dir, 'sft.jsonl'), Array.from({ length: 12 }, () => JSON.stringify({ prompt: say(3), completion: say(5) })).join('\n') + '\n');
writeFileSync(
  join(dir, 'rank.jsonl'),
  [
    ...Array.from({ length: 20 }, () => JSON.stringify({ prompt: say(3), completions: [say(8), say(5), say(2)] })),
    '{"prompt": "x", "completions": ["only one"]}',
    ...Array.from({ length: 4 }, () => JSON.stringify({ prompt: say(3), chosen: say(6), rejected: say(1) })),
  ].join('\n') + '\n',
);
writeFileSync(join(dir, 'prompts.jsonl'), Array.from({ length: 4 }, () => JSON.stringify({ prompt: say(3), completion: say(4) })).join('\n') + '\n');
const model = 'tests/fixtures/gpt2-tiny';
const common = ['--model', model, '--seq-len', '24', '--batch-size', '4'];
const metrics = (d: string) =>
  readFileSync(join(d, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);

describe('training from the command line', () => {
  it('sft, resumed from a checkpoint, ends with exactly the weights of an uninterrupted run', async () => {
    const a = join(dir, 'sft-a'),
      b = join(dir, 'sft-b');
    expect((await cli(['sft', ...common, '--data', join(dir, 'sft.jsonl'), '--out', a, '--steps', '6', '--epochs', '2', '--seed', '3'])).code).toBe(0);
    expect(
      (await cli(['sft', ...common, '--data', join(dir, 'sft.jsonl'), '--out', b, '--steps', '6', '--epochs', '2', '--seed', '3', '--stop-after', '3'])).code,
    ).toBe(0);
    expect(existsSync(join(b, 'checkpoint.safetensors'))).toBe(true);
    expect(existsSync(join(b, 'model.safetensors'))).toBe(false);
    const r = await cli(['sft', ...common, '--data', join(dir, 'sft.jsonl'), '--out', b, '--steps', '6', '--epochs', '2', '--seed', '3', '--resume']);
    expect(r.code, r.stderr).toBe(0);
    const sa = parseSafetensors(readFileSync(join(a, 'model.safetensors')), 'a'),
      sb = parseSafetensors(readFileSync(join(b, 'model.safetensors')), 'b');
    for (const name of sa.tensors.keys()) expect(readTensorF32(sb, name), name).toEqual(readTensorF32(sa, name));
    expect(metrics(b).map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]); // the history survives the interruption
    expect(metrics(b).map((m) => m.loss)).toEqual(metrics(a).map((m) => m.loss));
  });

  it('rm, dpo and ppo write adapters and TRL-named metrics; a malformed line is reported by number', async () => {
    const rm = join(dir, 'rm'),
      dpo = join(dir, 'dpo'),
      ppo = join(dir, 'ppo');
    const r = await cli(['rm', ...common, '--data', join(dir, 'rank.jsonl'), '--out', rm, '--lora-rank', '4']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/rank\.jsonl:21: /);
    const cfg = JSON.parse(readFileSync(join(rm, 'adapter_config.json'), 'utf8')) as { modules_to_save: string[]; r: number; task_type: string };
    expect(cfg.modules_to_save).toEqual(['score']);
    expect(cfg.task_type).toBe('SEQ_CLS'); // PEFT's reward-model task: the base loads as GPT2ForSequenceClassification
    expect(Object.keys(metrics(rm)[0]!)).toEqual(expect.arrayContaining(['step', 'loss', 'accuracy']));
    expect(Object.keys(metrics(rm).at(-1)!)).toEqual(expect.arrayContaining(['eval_accuracy']));
    expect((await cli(['dpo', ...common, '--data', join(dir, 'rank.jsonl'), '--out', dpo, '--lora-rank', '4', '--steps', '2'])).code).toBe(0);
    expect(Object.keys(metrics(dpo)[0]!)).toEqual(expect.arrayContaining(['loss', 'rewards/margins', 'rewards/accuracies']));
    const p = await cli([
      'ppo',
      '--model',
      model,
      '--seq-len',
      '24',
      '--batch-size',
      '2',
      '--prompts',
      join(dir, 'prompts.jsonl'),
      '--reward',
      rm,
      '--out',
      ppo,
      '--lora-rank',
      '4',
      '--num-samples',
      '2',
      '--max-new-tokens',
      '6',
      '--steps',
      '2',
      '--ptx-coef',
      '0.5',
      '--ema-decay',
      '0.9',
    ]);
    expect(p.code, p.stderr).toBe(0);
    expect(Object.keys(metrics(ppo)[0]!)).toEqual(
      expect.arrayContaining(['objective/scores', 'objective/kl', 'objective/entropy', 'policy/clipfrac_avg', 'loss/policy_avg', 'loss/value_avg']),
    );
    expect(existsSync(join(ppo, 'adapter_model.safetensors'))).toBe(true);
    expect(metrics(ppo).at(-1)!.ema_decay).toBe(0.9); // PPO-ptx and the EMA ran; the export is the EMA policy
    const bad = await cli(['ppo', '--model', model, '--prompts', join(dir, 'prompts.jsonl'), '--reward', rm, '--out', ppo]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/a LoRA reward model needs a LoRA policy: give --lora-rank/);
    // full fine-tuning: a full reward model (GPT2ForSequenceClassification) and four separate models
    const rmFull = join(dir, 'rm-full'),
      ppoFull = join(dir, 'ppo-full');
    expect((await cli(['rm', ...common, '--data', join(dir, 'rank.jsonl'), '--out', rmFull, '--steps', '2'])).code).toBe(0);
    expect(existsSync(join(rmFull, 'score.json'))).toBe(false);
    const rc = JSON.parse(readFileSync(join(rmFull, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(rc).toMatchObject({
      architectures: ['GPT2ForSequenceClassification'],
      num_labels: 1,
      id2label: { 0: 'LABEL_0' },
      label2id: { LABEL_0: 0 },
      pad_token_id: 376,
    });
    const st = parseSafetensors(readFileSync(join(rmFull, 'model.safetensors')), 'rm-full');
    expect(st.tensors.get('score.weight')!.shape).toEqual([1, 48]);
    expect([...st.tensors.keys()].filter((k) => k !== 'score.weight').every((k) => k.startsWith('transformer.'))).toBe(true);
    expect(Number(st.metadata.reward_bias)).toBe(metrics(rmFull).at(-1)!.reward_bias);
    const f = await cli([
      'ppo',
      '--model',
      model,
      '--seq-len',
      '24',
      '--batch-size',
      '2',
      '--prompts',
      join(dir, 'prompts.jsonl'),
      '--reward',
      rmFull,
      '--out',
      ppoFull,
      '--num-samples',
      '2',
      '--max-new-tokens',
      '6',
      '--steps',
      '1',
    ]);
    expect(f.code, f.stderr).toBe(0);
    expect(existsSync(join(ppoFull, 'model.safetensors'))).toBe(true);
    // a full reward model as older versions wrote it: a causal-LM folder with score.json beside it
    const rmOld = join(dir, 'rm-old'),
      ppoOld = join(dir, 'ppo-old');
    mkdirSync(rmOld);
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.json']) copyFileSync(join(model, file), join(rmOld, file));
    writeFileSync(join(rmOld, 'score.json'), JSON.stringify({ 'score.weight': Array.from({ length: 48 }, (_, i) => Math.sin(i) / 7), bias: 0.25 }));
    const o = await cli([
      'ppo',
      '--model',
      model,
      '--seq-len',
      '24',
      '--batch-size',
      '2',
      '--prompts',
      join(dir, 'prompts.jsonl'),
      '--reward',
      rmOld,
      '--out',
      ppoOld,
      '--num-samples',
      '2',
      '--max-new-tokens',
      '6',
      '--steps',
      '1',
    ]);
    expect(o.code, o.stderr).toBe(0);
    expect(existsSync(join(ppoOld, 'model.safetensors'))).toBe(true);
    // not a reward model: a plain causal-LM folder is refused with what --reward takes
    const n = await cli(['ppo', '--model', model, '--prompts', join(dir, 'prompts.jsonl'), '--reward', model, '--out', join(dir, 'ppo-none')]);
    expect(n.code).toBe(2);
    expect(n.stderr).toMatch(/--reward tests\/fixtures\/gpt2-tiny: not a reward model/);
  });
});

describe("Hugging Face's max_steps and TRL's prompt-only lines", () => {
  const lines = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

  it('--max-steps N is exactly N optimizer steps on fewer examples than that (cycling through them); --steps is its alias', async () => {
    const data = join(dir, 'two.jsonl'),
      a = join(dir, 'sft-max-steps'),
      b = join(dir, 'sft-steps');
    writeFileSync(
      data,
      lines([
        { prompt: 'the cat', completion: 'sat on a mat' },
        { prompt: 'a dog', completion: 'ran far away' },
      ]),
    );
    const r = await cli(['sft', ...common, '--data', data, '--out', a, '--max-steps', '5']);
    expect(r.code, r.stderr).toBe(0);
    expect(metrics(a).map((m) => m.step)).toEqual([1, 2, 3, 4, 5]); // one batch holds both examples: 5 epochs
    expect((await cli(['sft', ...common, '--data', data, '--out', b, '--steps', '5'])).code).toBe(0);
    expect(metrics(b)).toEqual(metrics(a));
  });

  it('ppo --prompts takes prompt-only lines, text and conversational; sft refuses a file of prompts only', async () => {
    const rm = join(dir, 'rm-for-prompts'),
      out = join(dir, 'ppo-prompt-only'),
      prompts = join(dir, 'prompt-only.jsonl');
    const r = await cli(['rm', ...common, '--data', join(dir, 'rank.jsonl'), '--out', rm, '--lora-rank', '4', '--max-steps', '1']);
    expect(r.code, r.stderr).toBe(0);
    writeFileSync(
      prompts,
      lines([
        { prompt: 'the cat sat' },
        { prompt: 'a big dog', task: 'story' }, // flat metadata beside the prompt is ignored
        { prompt: [{ role: 'user', content: 'the red mat' }] }, // TRL's conversational form
        { prompt: [{ role: 'user', content: 'ran far away' }] },
      ]),
    );
    const ppo = [
      'ppo',
      '--model',
      model,
      '--seq-len',
      '24',
      '--batch-size',
      '2',
      '--reward',
      rm,
      '--lora-rank',
      '4',
      '--num-samples',
      '2',
      '--max-new-tokens',
      '6',
    ];
    const p = await cli([...ppo, '--prompts', prompts, '--out', out, '--max-steps', '3']);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stderr).toBe(''); // every line was taken
    expect(metrics(out).map((m) => m.step)).toEqual([1, 2, 3]); // two prompts a step: into the second pass over them
    expect(Object.keys(metrics(out)[0]!)).toEqual(expect.arrayContaining(['objective/scores', 'objective/kl']));
    expect(existsSync(join(out, 'adapter_model.safetensors'))).toBe(true);
    // a system prompt needs the chat template, which the tiny model has not: refused in one line naming the file
    const multi = join(dir, 'multi-turn.jsonl');
    writeFileSync(
      multi,
      lines([
        {
          prompt: [
            { role: 'system', content: 'Be brief.' },
            { role: 'user', content: 'the cat' },
          ],
        },
        { prompt: 'a dog' },
      ]),
    );
    const m = await cli([...ppo, '--prompts', multi, '--out', join(dir, 'ppo-multi')]);
    expect(m.code).toBe(2);
    expect(m.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/multi-turn\.jsonl: a system or multi-turn conversational prompt needs the model's chat template/),
    ]);
    // prompts are not demonstrations: sft skips them, and with nothing else to train on says what it needs
    const s = await cli(['sft', ...common, '--data', prompts, '--out', join(dir, 'sft-prompts')]);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/4 prompt-only lines skipped \(prompts are for ppo --prompts\)/);
    expect(s.stderr.trim().split('\n').at(-1)).toMatch(/prompt-only\.jsonl: SFT needs \{"prompt","completion"\}/);
  });
  it('a dataset that is not UTF-8 text, binary or empty is refused in one line naming the file, before any training', async () => {
    const latin1 = join(dir, 'latin1.jsonl'),
      bin = join(dir, 'weights.jsonl'),
      empty = join(dir, 'empty.jsonl');
    writeFileSync(
      latin1,
      Buffer.concat([Buffer.from('{"prompt": "a", "completion": "b"}\n{"prompt": "caf'), Buffer.from([0xe9]), Buffer.from('", "completion": "x"}\n')]),
    );
    writeFileSync(bin, Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00]));
    writeFileSync(empty, '');
    for (const [file, problem] of [
      [latin1, 'not UTF-8 text (line 2, byte offset 50: 0xe9)'],
      [bin, 'a binary file, not text (a NUL byte at line 1, byte offset 7)'],
      [empty, 'the file is empty'],
    ] as const) {
      const r = await cli(['sft', ...common, '--data', file, '--out', join(dir, 'sft-bad')]);
      expect(r.code, file).toBe(2);
      expect(r.stderr.trim().split('\n'), file).toEqual([expect.stringContaining(`${file}: ${problem}`)]);
    }
    expect(existsSync(join(dir, 'sft-bad', 'metrics.jsonl'))).toBe(false);
  });
});
