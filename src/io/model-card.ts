// The README.md a published model carries on the Hugging Face Hub: YAML front matter the Hub indexes
// (base_model, library_name, license, tags, pipeline_tag) and a body that says what the model is, how it
// was trained (stages in order, their key hyperparameters, the data counts, the final metrics) and how to
// load it. Pure string work: runs in browsers and in Node.
//
// Everything a user typed (title, description, license, names) and everything read from files (the base
// model's name, metric names) is untrusted. So:
//   - every front-matter value is one double-quoted YAML scalar on one line: quotes, backslashes, line
//     breaks (also the ones YAML 1.1 counts: U+0085, U+2028, U+2029) and characters PyYAML refuses are
//     escaped, lone surrogates become U+FFFD. No value can end the front matter or add a key;
//   - `base_model` is written only when it is a valid Hub id (the Hub links and indexes it);
//   - body text has the Markdown syntax it would hold backslash-escaped (mdInline) and `<`, `&` written
//     as entities, so it renders as the literal text and never as HTML, a link or a table break;
//   - code blocks hold only validated Hub ids (or a placeholder), never free text.
import { baseRefOf, checkModelId, parseModelRef } from './hub.ts';
import { cardRows } from '../shared/schema.ts';
import { wellFormed, yamlQuote } from './yaml.ts';

export interface CardStage {
  stage: string; // 'sft' | 'rm' | 'dpo' | 'ppo' (another name is shown as it is)
  /** How this stage relates to the published weights, e.g. "the reward model PPO optimised against". */
  role?: string;
  steps?: number;
  totalSteps?: number;
  /** The resolved training config (src/shared/config.ts names); the key hyperparameters are picked from it. */
  config?: Record<string, unknown>;
  /** The last optimizer step's metrics (TRL names). */
  metrics?: Record<string, number>;
  /** What the stage reported at its end (e.g. eval_accuracy, reward_bias). */
  result?: Record<string, unknown>;
}

export interface CardData {
  demonstrations?: number;
  rankings?: number;
  comparisons?: number; // preference pairs: all untied pairs of the rankings plus explicit pairs
  prompts?: number;
}

export interface ModelCardInput {
  /** A PEFT LoRA adapter or a full model folder. */
  kind: 'adapter' | 'model';
  /** What it was trained from: a Hub id (optionally `@revision`), a URL or a name. */
  baseModel: string;
  /** Where the card will live ("owner/name"), for the loading snippet. */
  repo?: string;
  title?: string;
  description?: string;
  /** A Hub license id ("mit", "apache-2.0", ...); anything else is written as `other` with license_name. */
  license?: string;
  /** The stages that made these weights, in the order they ran. */
  stages: CardStage[];
  data?: CardData;
  /** The weights hold a reward model's score head (a reward model, not a policy). */
  rewardHead?: boolean;
  /** A download that carries the base model beside the adapter (starting-model/ and adapter/): the code loads both from there. */
  bundledBase?: boolean;
  /** ISO date of the export. */
  date?: string;
}

// ---------------------------------------------------------------------------------------------
// Escaping

/** Markdown syntax anywhere in a line: escapes, code, emphasis, links and images, table cells,
 *  strikethrough, math and headings' closing #s (CommonMark allows a backslash before any of these). */
const MD_ANYWHERE = /[\\`*_[\]|~$#]/g;

/**
 * One line of literal text in Markdown: line breaks become spaces, HTML and Markdown syntax are inert.
 * Only what Markdown would read is escaped, so "0.0001" and "rlhf-playground" stay as they are: the
 * characters above anywhere; what starts a block at the start (a list, a quote, a heading underline);
 * and the "://" and "www." that GFM would turn into a link.
 */
export function mdInline(s: string): string {
  return (
    wellFormed(s)
      .replace(/\r\n?|[\n\u0085\u2028\u2029]/g, ' ')
      .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '')
      .replace(/\t/g, ' ')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(MD_ANYWHERE, (c) => '\\' + c)
      // a list item ("- ", "+ ", "1. ", "2) "), a rule or setext underline ("---", "==="), a quote (">")
      .replace(/^(\s*)([=>]|[-+](?=[\s\-+]|$)|\d+(?=[.)](\s|$)))/, (_, sp: string, x: string) => (/\d/.test(x) ? `${sp}${x}\\` : `${sp}\\${x}`))
      .replace(/:(?=\/\/)/g, '\\:')
      .replace(/\b(www)\./gi, '$1\\.')
  );
}

/**
 * Literal paragraphs: each line escaped (leading spaces dropped so nothing becomes a code block), a line
 * break kept as a hard break (a backslash at the end of the line), blank lines as paragraph breaks.
 */
function mdBlock(s: string): string {
  const lines = wellFormed(s)
    .split(/\r\n?|[\n\u0085\u2028\u2029]/)
    .map((line) => mdInline(line.trim()));
  return lines
    .map((line, i) => (line !== '' && lines[i + 1] ? line + '\\' : line))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

// ---------------------------------------------------------------------------------------------
// What the stages are

const STAGES: Record<string, { tag: string; name: string }> = {
  sft: { tag: 'sft', name: 'Supervised fine-tuning (SFT)' },
  rm: { tag: 'reward-model', name: 'Reward model from rankings' },
  dpo: { tag: 'dpo', name: 'Direct preference optimization (DPO)' },
  ppo: { tag: 'ppo', name: 'PPO against the reward model, with a KL penalty to the reference' },
};

const fmtNumber = (n: number) => (Number.isInteger(n) ? String(n) : Number.isFinite(n) ? String(Number(n.toPrecision(5))) : String(n));
const fmtValue = (v: unknown): string | undefined =>
  typeof v === 'number' ? fmtNumber(v) : typeof v === 'boolean' ? String(v) : typeof v === 'string' && v !== '' ? v : undefined;

/** The Hub id of a base model name, or undefined when it is a URL, a path or a file name. */
export function hubIdOf(name: string): string | undefined {
  try {
    const { id } = parseModelRef(name);
    return id;
  } catch {
    return undefined;
  }
}

function validRepo(repo: string | undefined): string | undefined {
  if (!repo || !repo.includes('/')) return undefined;
  try {
    return checkModelId(repo);
  } catch {
    return undefined;
  }
}

const LICENSE_ID = /^[a-z0-9][a-z0-9.+-]{0,63}$/;
/** A revision that may stand in the loading code: a branch, tag or commit of plain characters. */
const SAFE_REVISION = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$/;

// ---------------------------------------------------------------------------------------------

function frontMatter(x: ModelCardInput, base: string | undefined): string {
  const lines: string[] = [];
  const put = (key: string, value: string) => lines.push(`${key}: ${yamlQuote(value)}`);
  if (base) put('base_model', base);
  put('library_name', x.kind === 'adapter' ? 'peft' : 'transformers');
  const license = x.license?.trim();
  if (license) {
    if (LICENSE_ID.test(license.toLowerCase())) put('license', license.toLowerCase());
    else {
      put('license', 'other');
      put('license_name', license);
    }
  }
  put('pipeline_tag', x.rewardHead ? 'text-classification' : 'text-generation');
  const tags = ['rlhf-playground', 'rlhf', ...x.stages.map((s) => STAGES[s.stage]?.tag ?? s.stage), ...(x.kind === 'adapter' ? ['lora'] : [])];
  lines.push('tags:', ...[...new Set(tags.filter((t) => t.trim() !== ''))].map((t) => `- ${yamlQuote(t)}`));
  return `---\n${lines.join('\n')}\n---\n`;
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  return [`| ${head.join(' | ')} |`, `|${' --- |'.repeat(head.length)}`, ...rows.map((r) => `| ${r.map(mdInline).join(' | ')} |`)].join('\n');
}

function stageSection(s: CardStage, i: number): string {
  const what = STAGES[s.stage]?.name ?? s.stage;
  const steps =
    s.steps !== undefined
      ? `, ${fmtNumber(s.steps)}${s.totalSteps !== undefined && s.totalSteps !== s.steps ? ` of ${fmtNumber(s.totalSteps)}` : ''} optimizer steps`
      : '';
  let out = `${i + 1}. **${mdInline(what)}**${mdInline(steps)}${s.role ? `: ${mdInline(s.role)}` : ''}\n`;
  const cfg = s.config ?? {};
  const lora = typeof cfg.loraRank === 'number' && cfg.loraRank > 0;
  const rows: [string, string, string][] = [];
  // the hyperparameters worth reading, with their labels and TRL's names: the schema's (src/shared/schema.ts, `card`, `trl`)
  for (const [key, label, trl] of cardRows(s.stage)) {
    if (!lora && key.startsWith('lora') && key !== 'loraRank') continue;
    if (key === 'steps' && cfg.steps === 0) continue;
    if (key === 'epochs' && (Number(cfg.steps) > 0 || cfg.epochs === 0)) continue; // the step cap overrides the epochs; 0 was never resolved
    const v = key === 'loraRank' && !lora ? 'full fine-tuning' : fmtValue(cfg[key]);
    if (v !== undefined) rows.push([label, v, trl]);
  }
  if (rows.length) out += '\n' + indent(table(['hyperparameter', 'value', 'TRL name'], rows)) + '\n';
  return out;
}

const indent = (s: string) =>
  s
    .split('\n')
    .map((l) => '   ' + l)
    .join('\n');

function usage(x: ModelCardInput, base: string | undefined, repo: string | undefined): string {
  const bundled = x.kind === 'adapter' && !!x.bundledBase;
  const r = JSON.stringify(bundled ? 'adapter' : (repo ?? 'your-name/your-model'));
  // the base's revision beside its id, as from_pretrained takes it (only a plain ref name goes into code)
  const rev = bundled || !base ? null : baseRefOf(x.baseModel).revision;
  const b =
    JSON.stringify(bundled ? 'starting-model' : (base ?? 'BASE_MODEL')) + (rev !== null && SAFE_REVISION.test(rev) ? `, revision=${JSON.stringify(rev)}` : '');
  const noBase = bundled
    ? `\nThe download carries the base model (${mdInline(x.baseModel || 'not recorded')}, which is not on the Hugging Face Hub) in \`starting-model/\` beside the adapter in \`adapter/\`: with both in one folder (the download unzipped, or the repo fetched with \`huggingface_hub.snapshot_download\`), run this from there.\n`
    : base
      ? ''
      : `\nReplace \`BASE_MODEL\` with the model this was trained from (${mdInline(x.baseModel || 'not recorded')}).\n`;
  // where transformers reads a sequence's score, and the constant the playground adds to it
  const scoring = (
    biasFile: string,
  ) => `The reward of a text is the score head at its last token; the playground scores the prompt (through the chat template when the tokenizer has one), the completion and the EOS token after it. transformers reads the score at each row's last token that is not \`pad_token_id\` (without one, at the last token of one unpadded row): where \`pad_token_id\` is the EOS id (a tokenizer without a pad token), score one unpadded sequence at a time with \`model.config.pad_token_id = None\` to read it at the EOS, as the playground does. The playground also adds \`reward_bias\` from the metadata of \`${biasFile}\`, a constant that makes the demonstrations score 0 on average.
`;
  if (x.kind === 'adapter' && x.rewardHead) {
    return `A LoRA adapter of a reward model for [PEFT](https://huggingface.co/docs/peft) (\`task_type: "SEQ_CLS"\`, the score head in \`modules_to_save: ["score"]\`): load the base model as a sequence classifier with one label, then the adapter on it.

\`\`\`python
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer

base = AutoModelForSequenceClassification.from_pretrained(${b}, num_labels=1)
model = PeftModel.from_pretrained(base, ${r})
tokenizer = AutoTokenizer.from_pretrained(${b})
\`\`\`
${noBase}
${scoring('adapter_model.safetensors')}`;
  }
  if (x.kind === 'adapter') {
    return `A LoRA adapter for [PEFT](https://huggingface.co/docs/peft): load the base model, then the adapter on it.

\`\`\`python
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

base = AutoModelForCausalLM.from_pretrained(${b})
model = PeftModel.from_pretrained(base, ${r})
tokenizer = AutoTokenizer.from_pretrained(${b})
model = model.merge_and_unload()  # optional: one plain transformers model
\`\`\`
${noBase}`;
  }
  if (x.rewardHead) {
    return `A reward model in transformers' sequence-classification layout: \`config.json\` names the architecture's sequence-classification class (\`LlamaForSequenceClassification\`, \`Qwen2ForSequenceClassification\`, \`GPT2ForSequenceClassification\`, ...) with one label, and \`model.safetensors\` holds the trunk and the score head \`score.weight\` (one value per hidden unit, no bias) in place of the LM head.

\`\`\`python
from transformers import AutoModelForSequenceClassification, AutoTokenizer

model = AutoModelForSequenceClassification.from_pretrained(${r})
tokenizer = AutoTokenizer.from_pretrained(${r})
\`\`\`

${scoring('model.safetensors')}`;
  }
  return `A complete model folder (config, safetensors weights, tokenizer) for [transformers](https://huggingface.co/docs/transformers).

\`\`\`python
from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained(${r})
tokenizer = AutoTokenizer.from_pretrained(${r})
\`\`\`
`;
}

/** The model card (README.md) for `x`. */
export function modelCard(x: ModelCardInput): string {
  const base = hubIdOf(x.baseModel);
  const repo = validRepo(x.repo);
  const title =
    x.title?.trim() || repo?.split('/')[1] || (x.kind === 'adapter' ? 'LoRA adapter trained with RLHF Playground' : 'Model trained with RLHF Playground');
  const parts: string[] = [frontMatter(x, base), `# ${mdInline(title)}\n`];
  if (x.description?.trim()) parts.push(mdBlock(x.description) + '\n');

  const what = x.kind === 'adapter' ? 'A LoRA adapter' : x.stages.length ? 'A fine-tuned model' : 'A model';
  const baseText = base ? `[${mdInline(base)}](https://huggingface.co/${base})` : x.baseModel ? mdInline(x.baseModel) : 'a model that was not recorded';
  const recipe = x.rewardHead
    ? 'a reward model learned from human rankings, as in InstructGPT'
    : x.stages.length
      ? "the InstructGPT recipe's stages listed below"
      : 'no training (exported as loaded)';
  const where = x.stages.length
    ? "It was trained in a web browser with RLHF Playground: WebGPU kernels on the trainer's own GPU, with data that never left their machine until this upload."
    : 'It was exported from RLHF Playground, which trains models in a web browser.';
  parts.push(`${what} for ${baseText}, made with ${recipe}. ${where}\n`);

  const baseRev = base ? baseRefOf(x.baseModel).revision : null;
  parts.push(
    `## Base model\n\n${base ? `[${mdInline(base)}](https://huggingface.co/${base}) (\`base_model\` above)${baseRev !== null ? `, at revision ${mdInline(baseRev)}` : ''}.` : `${baseText} (not a Hugging Face Hub id, so \`base_model\` is not set).`}\n`,
  );

  if (x.stages.length) parts.push(`## Training\n\nStages, in the order they ran:\n\n${x.stages.map(stageSection).join('\n')}`);

  const d = x.data ?? {};
  const dataRows: [string, string][] = [];
  if (d.demonstrations !== undefined) dataRows.push(['demonstrations (prompt and written answer)', fmtNumber(d.demonstrations)]);
  if (d.rankings !== undefined) dataRows.push(['rankings (K answers of one prompt, ordered; a preference pair is one of 2)', fmtNumber(d.rankings)]);
  if (d.comparisons !== undefined) dataRows.push(['comparisons (preference pairs from the rankings)', fmtNumber(d.comparisons)]);
  if (d.prompts !== undefined) dataRows.push(['prompts (for sampling during PPO)', fmtNumber(d.prompts)]);
  if (dataRows.length) parts.push(`## Data\n\n${table(['data', 'count'], dataRows)}\n`);

  const metricRows: [string, string][] = [];
  x.stages.forEach((s) => {
    const label = (k: string) => (x.stages.length > 1 ? `${STAGES[s.stage]?.tag ?? s.stage}: ${k}` : k);
    for (const [k, v] of Object.entries(s.metrics ?? {})) if (typeof v === 'number') metricRows.push([label(k), fmtNumber(v)]);
    for (const [k, v] of Object.entries(s.result ?? {})) {
      const f = fmtValue(v);
      if (f !== undefined) metricRows.push([label(k), f]);
    }
  });
  if (metricRows.length)
    parts.push(`## Results\n\nAt the last step (TRL's metric names), and what each stage reported at its end:\n\n${table(['metric', 'value'], metricRows)}\n`);

  parts.push(`## How to use\n\n${usage(x, base, repo)}`);
  if (x.stages.length) {
    parts.push(
      `## Trained in the browser\n\nEvery step ran in a browser tab: forward and backward passes in hand-written WGSL kernels, AdamW, checkpoints in IndexedDB${x.date ? `; exported ${mdInline(x.date)}` : ''}. The safetensors metadata records the producer, the stage, the steps and the base model.\n`,
    );
  }
  return parts.join('\n').replace(/\n{3,}/g, '\n\n');
}
