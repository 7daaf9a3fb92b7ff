// What the online stages' builders (PPO, GRPO/RLOO) share: the prompts, encoded and as shown, step s's
// batch of them (whole batches per pass), and a rollout's text token by token for the Inspect tab.
import { promptText, toPrompts } from '../../io/datasets.ts';
import { StreamDecoder } from '../../io/tokenizer.ts';
import { DataError, epochOrder, type Setup } from './common.ts';

export interface OnlinePrompts {
  prompts: number[][];
  perEpoch: number;
  /** Step s's prompts. */
  batchAt(s: number): number[][];
  /** The prompt as the user wrote it (a conversation: its last user turn), for the rollouts shown during training and the reward functions (the ids carry the chat template). */
  textOf(ids: number[]): string;
  /** One piece of text per token of `ids` after `prompt`; a character split over tokens shows whole on the token that ends it. */
  tokenTexts(prompt: number[], ids: number[]): string[];
}

export function onlinePrompts(x: Setup): OnlinePrompts {
  const { tok, B, c } = x;
  const given = toPrompts(x.records);
  if (!tok.hasChatTemplate && given.some((p) => promptText(p) === undefined))
    throw new DataError("a system or multi-turn conversational prompt needs the model's chat template, and it has none");
  const prompts = given.map(x.encPrompt);
  const shown = new Map(given.map((p, i) => [prompts[i]!.join(','), typeof p === 'string' ? p : p.at(-1)!.content] as const));
  const perEpoch = Math.floor(prompts.length / B);
  if (perEpoch < 1) throw new DataError(`${x.stage.toUpperCase()}: ${prompts.length} prompts, fewer than batchSize ${B}`);
  return {
    prompts,
    perEpoch,
    batchAt(s) {
      const i = s % perEpoch;
      return epochOrder(prompts.length, c.seed, Math.floor(s / perEpoch))
        .slice(i * B, (i + 1) * B)
        .map((k) => prompts[k]!);
    },
    textOf: (ids) => shown.get(ids.join(',')) ?? tok.decode(ids),
    tokenTexts(prompt, ids) {
      const sd = new StreamDecoder(tok, prompt);
      const tokens = ids.map((id) => sd.push(id));
      if (tokens.length) tokens[tokens.length - 1] += sd.flush();
      return tokens;
    },
  };
}
