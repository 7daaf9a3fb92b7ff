// The model card: front matter the Hub reads (base_model, library_name, tags, license), a body that
// lists the stages with their hyperparameters, the data counts and the final metrics, and loading code
// for transformers or PEFT. Hostile user text (quotes, line breaks, `---`, HTML, Markdown, odd Unicode)
// must neither change the front matter nor render as anything but itself.
import { spawnSync } from 'node:child_process';
import MarkdownIt from 'markdown-it';
import { describe, expect, it } from 'vitest';
import { mdInline, modelCard, type ModelCardInput } from '../src/io/model-card.ts';
import { yamlQuote } from '../src/io/yaml.ts';
import { readFrontMatter, yamlDoubleQuoted } from './helpers/front-matter.ts';

const HOSTILE = [
  'plain',
  '"quoted" and \'single\'',
  'back\\slash \\n not a newline',
  'line one\nline two\r\nthree\rfour',
  '---\nlicense: evil\n---',
  '...',
  '# heading',
  '- item',
  '> quote',
  '<script>alert(1)</script>',
  '<img src=x onerror=alert(1)>',
  '[click](javascript:alert(1))',
  '![img](http://x/y.png)',
  '| a | b |',
  '`code` ```fence```',
  '*bold* _it_ ~~s~~',
  '&amp; &lt;',
  'tab\there',
  'nul\u0000bell\u0007esc\u001bdel\u007f',
  'nel\u0085ls\u2028ps\u2029',
  'bom\ufeff',
  'emoji 🦙 and 中文',
  'lone \ud800 surrogate \udc00',
  ': colon',
  'key: value',
  '{a: 1}',
  '[1, 2]',
  'null',
  'yes',
  '0x10',
  '1e5',
  '@at',
  '%percent',
  '!tag',
  '&anchor',
  '*alias',
  '| pipe',
  '    indented',
];

const wellFormed = (s: string) => s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');

const ppoCard: ModelCardInput = {
  kind: 'adapter',
  baseModel: 'HuggingFaceTB/SmolLM2-135M@main',
  repo: 'alice/smol-ppo',
  license: 'apache-2.0',
  date: '2026-01-02',
  stages: [
    {
      stage: 'rm',
      role: 'the reward model PPO optimised against',
      steps: 12,
      totalSteps: 12,
      config: { lr: 1e-4, epochs: 1, steps: 0, batchSize: 8, seqLen: 256, loraRank: 8, loraAlpha: 16, loraDropout: 0.05, seed: 0 },
      metrics: { loss: 0.41, accuracy: 0.8 },
      result: { eval_accuracy: 0.75, reward_bias: -0.125 },
    },
    {
      stage: 'ppo',
      steps: 20,
      totalSteps: 25,
      config: { lr: 1e-4, batchSize: 4, loraRank: 8, loraAlpha: 16, klCoef: 0.02, cliprange: 0.2, numSamples: 4, maxNewTokens: 32, rewardRunId: 'abc' },
      metrics: { 'objective/kl': 0.031, 'env/reward_mean': 1.5 },
    },
  ],
  data: { demonstrations: 10, rankings: 40, comparisons: 180, prompts: 64 },
};

describe('yamlQuote', () => {
  it('round-trips every hostile string through a YAML double-quoted scalar on one line', () => {
    for (const s of HOSTILE) {
      const q = yamlQuote(s);
      expect(q).not.toMatch(/[\n\r\u0085\u2028\u2029]/);
      expect(yamlDoubleQuoted(q)).toBe(wellFormed(s));
    }
  });
});

describe('mdInline', () => {
  // a CommonMark renderer with GFM tables, strikethrough and autolinks, raw HTML on: what the text becomes
  const md = new MarkdownIt({ html: true, linkify: true });
  const text = (html: string) =>
    html
      .replace(/<[^>]+>/g, '')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&amp;/g, '&')
      .trim();
  const tags = (html: string) => [...html.matchAll(/<([a-z0-9]+)/gi)].map((m) => m[1]);

  it('shows the text itself, rendered: no HTML, no link, no list, heading, quote, code or table cell break', () => {
    for (const s of [...HOSTILE, '1. first', '2) second', '+ plus', '= underline', 'see http://x.org/a_b and www.example.com', '$x^2$ math', 'C# and #tag']) {
      // line breaks become spaces, control characters go; everything else is shown as typed
      const expected = wellFormed(s)
        .replace(/\r\n?|[\n\u0085\u2028\u2029]/g, ' ')
        .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '')
        .replace(/\t/g, ' ');
      const p = md.render(mdInline(expected.trim()));
      expect(tags(p), `${JSON.stringify(s)} -> ${p}`).toEqual(expected.trim() ? ['p'] : []);
      expect(text(p)).toBe(expected.trim().replace(/ +/g, ' '));
      const mid = md.render(`word ${mdInline(s)} word`); // mid-line, leading spaces and all
      expect(tags(mid), `${JSON.stringify(s)} -> ${mid}`).toEqual(['p']);
      const cell = md.render(`| a | b |\n| --- | --- |\n| ${mdInline(s)} | x |`);
      expect(
        tags(cell).filter((t) => t === 'td'),
        `${JSON.stringify(s)} -> ${cell}`,
      ).toEqual(['td', 'td']);
      const h = md.render(`# ${mdInline(s)}`);
      expect(tags(h)).toEqual(['h1']);
    }
  });

  it('escapes only what Markdown would read: numbers, names and dashes stay as typed', () => {
    expect(mdInline('rlhf-playground at lr 0.0001 (3 steps), e.g. "x"!')).toBe('rlhf-playground at lr 0.0001 (3 steps), e.g. "x"!');
    expect(mdInline('- a *b*')).toBe('\\- a \\*b\\*');
  });
});

describe('modelCard', () => {
  it('writes the Hub metadata and the training story of a PPO adapter', () => {
    const card = modelCard(ppoCard);
    const { meta, body } = readFrontMatter(card);
    expect(meta.get('base_model')).toBe('HuggingFaceTB/SmolLM2-135M');
    expect(meta.get('library_name')).toBe('peft');
    expect(meta.get('license')).toBe('apache-2.0');
    expect(meta.get('pipeline_tag')).toBe('text-generation');
    expect(meta.get('tags')).toEqual(['rlhf-playground', 'rlhf', 'reward-model', 'ppo', 'lora']);
    // stages in order, with their hyperparameters
    expect(body.indexOf('Reward model from rankings')).toBeLessThan(body.indexOf('PPO against the reward model'));
    expect(body).toMatch(/20 of 25 optimizer steps/);
    expect(body).toContain('| KL coefficient | 0.02 |');
    expect(body).toMatch(/\| LoRA rank \| 8 \|/);
    expect(body).not.toMatch(/rewardRunId|abc/);
    // data and metrics
    expect(body).toContain('| rankings (K answers of one prompt, ordered; a preference pair is one of 2) | 40 |');
    expect(body).toMatch(/\| comparisons .* \| 180 \|/);
    expect(body).toMatch(/\| prompts .* \| 64 \|/);
    expect(body).toContain('| ppo: objective/kl | 0.031 |');
    expect(body).toContain('| reward-model: eval\\_accuracy | 0.75 |');
    // how to load it, with the checked ids
    expect(body).toContain('base = AutoModelForCausalLM.from_pretrained("HuggingFaceTB/SmolLM2-135M")');
    expect(body).toContain('model = PeftModel.from_pretrained(base, "alice/smol-ppo")');
    expect(body).toMatch(/trained in a web browser/i);
  });

  it('a full model: transformers, its own repo in the code, no lora tag', () => {
    const card = modelCard({
      kind: 'model',
      baseModel: 'openai-community/gpt2',
      repo: 'alice/gpt2-sft',
      stages: [{ stage: 'sft', steps: 3, config: { lr: 1e-5, loraRank: 0, loraAlpha: 0 } }],
    });
    const { meta, body } = readFrontMatter(card);
    expect(meta.get('library_name')).toBe('transformers');
    expect(meta.get('tags')).toEqual(['rlhf-playground', 'rlhf', 'sft']);
    expect(meta.has('license')).toBe(false);
    expect(body).toContain('AutoModelForCausalLM.from_pretrained("alice/gpt2-sft")');
    expect(body).toContain('| LoRA rank | full fine-tuning |');
    expect(body).not.toMatch(/LoRA alpha/);
  });

  it('a reward model says how to read its score head', () => {
    const adapter = readFrontMatter(modelCard({ ...ppoCard, stages: [ppoCard.stages[0]!], rewardHead: true }));
    expect(adapter.meta.get('pipeline_tag')).toBe('text-classification');
    expect(adapter.body).toContain('AutoModelForSequenceClassification.from_pretrained("HuggingFaceTB/SmolLM2-135M", num_labels=1)');
    expect(adapter.body).toContain('`task_type: "SEQ_CLS"`');
    expect(adapter.body).toContain('`reward_bias` from the metadata of `adapter_model.safetensors`');
    const full = readFrontMatter(
      modelCard({ kind: 'model', baseModel: 'openai-community/gpt2', repo: 'alice/gpt2-rm', stages: [{ stage: 'rm' }], rewardHead: true }),
    );
    expect(full.meta.get('library_name')).toBe('transformers');
    expect(full.body).toContain('AutoModelForSequenceClassification.from_pretrained("alice/gpt2-rm")');
    expect(full.body).toContain('`GPT2ForSequenceClassification`');
    expect(full.body).toContain('`reward_bias` from the metadata of `model.safetensors`');
    expect(full.body).not.toContain('score.json');
    expect(full.body).not.toContain('AutoModelForCausalLM');
  });

  it('leaves base_model out when the base is not a Hub id, and uses placeholders in the code', () => {
    const { meta, body } = readFrontMatter(modelCard({ kind: 'adapter', baseModel: 'http://localhost:5173/models/default/', repo: 'not a repo', stages: [] }));
    expect(meta.has('base_model')).toBe(false);
    expect(body).toContain('from_pretrained("BASE_MODEL")');
    expect(body).toContain('PeftModel.from_pretrained(base, "your-name/your-model")');
    expect(body).toContain(mdInline('http://localhost:5173/models/default/'));
  });

  it('hostile title, description, license and base model cannot break the front matter or the body', () => {
    for (const s of HOSTILE) {
      const card = modelCard({
        ...ppoCard,
        title: s,
        description: `${s}\n\n${s}\n---\n${s}`,
        license: s,
        baseModel: s,
        repo: s,
        stages: [{ ...ppoCard.stages[1]!, role: s, metrics: { [s]: 1 } }],
      });
      const { meta, body } = readFrontMatter(card);
      expect([...meta.keys()].sort()).toEqual(expect.arrayContaining(['library_name', 'pipeline_tag', 'tags']));
      for (const k of meta.keys()) expect(['base_model', 'library_name', 'license', 'license_name', 'pipeline_tag', 'tags']).toContain(k);
      const license = meta.get('license');
      if (license === 'other') expect(meta.get('license_name')).toBe(wellFormed(s.trim()));
      else expect(license).toBe(s.trim().toLowerCase());
      expect(meta.get('tags')).toEqual(['rlhf-playground', 'rlhf', 'ppo', 'lora']);
      // the body: no line that ends a front matter or rules, no HTML, no links other than the Hub's
      expect(body.split('\n').filter((l) => /^\s*(---|\*\*\*|___)\s*$/.test(l))).toEqual([]);
      expect(body).not.toMatch(/<(script|img)/i);
      // rendered: no HTML of theirs, no rule, and every link goes to the Hub
      const html = new MarkdownIt({ html: true, linkify: true }).render(body);
      expect(html).not.toMatch(/<(script|img|hr)\b/i);
      for (const [, href] of html.matchAll(/<a href="([^"]*)"/g)) expect(href, JSON.stringify(s)).toMatch(/^https:\/\/huggingface\.co\//);
      expect(body).not.toContain('\u2028');
      expect(body).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
    }
  });

  // PyYAML is a test requirement (Debian's python3-yaml, installed by .ci/setup-system): without it this fails, never skips
  it('PyYAML (what huggingface_hub reads cards with) reads the same front matter', () => {
    const python = spawnSync('python3', ['-c', 'import yaml'], { encoding: 'utf8' });
    expect(python.status, `python3 with PyYAML is needed (apt-get install python3-yaml): ${python.error?.message ?? python.stderr}`).toBe(0);
    const cards = HOSTILE.map((s) => modelCard({ ...ppoCard, license: s, baseModel: s, title: s }));
    const script =
      'import sys, json, yaml\nout = []\nfor c in json.load(sys.stdin):\n    out.append(yaml.safe_load(c.split("\\n---\\n")[0][4:]))\nprint(json.dumps(out))';
    const r = spawnSync('python3', ['-c', script], { input: JSON.stringify(cards), encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const parsed = JSON.parse(r.stdout) as Record<string, unknown>[];
    parsed.forEach((p, i) => expect(p).toEqual(Object.fromEntries(readFrontMatter(cards[i]!).meta)));
  });
});
