// The generation queue: generations, and anything that changes or frees weights a Generator reads, run one
// at a time (`exclusive`), in the order asked. A generation someone waits for goes ahead of background
// work (the Rank tab drawing its next prompt ahead): a background generation waits while one is queued and,
// when one arrives mid-generation, stops and queues again behind it, then starts over with the same seed,
// streaming only the text past what it had sent. A named generation can be stopped (stopGeneration).
// `sample` turns one prompt into streamed texts on a Generator (src/train/generate.ts).
import { findStop, StreamDecoder, type Tok } from '../io/tokenizer.ts';
import { GENERATE_DEFAULTS, type FinishReason, type Generator } from '../train/generate.ts';
import type { GenerateOptions, GenerateResult } from './api.ts';
import { notify, release } from './common.ts';

export type OnToken = (sample: number, textSoFar: string) => unknown;

/** One generation: streams to `onToken`; `interrupt` ends it between tokens. Undefined: it gave way (run it again). */
export type Attempt = (onToken: OnToken | undefined, interrupt: () => boolean) => Promise<GenerateResult | undefined>;

export class GenerationQueue {
  private queue: Promise<unknown> = Promise.resolve();
  /** generations someone waits for (not background ones), queued and not started: background generation gives way to them */
  private waiting = 0;
  private readonly generating = new Set<string>();
  private readonly stopped = new Set<string>();

  /** Runs `f` between generations (a Generator reading weights that `f` changes would mix the two).
   *  `urgent`: a generation someone waits for, which a background one gives way to (see generate). */
  exclusive<R>(f: () => Promise<R>, urgent = false): Promise<R> {
    if (urgent) this.waiting++;
    const turn = this.queue.then(() => {
      if (urgent) this.waiting--;
      return f();
    });
    this.queue = turn.catch(() => {});
    return turn;
  }

  /** Whether the generation named `id` was asked to stop. */
  isStopped(id: string | undefined): boolean {
    return !!id && this.stopped.has(id);
  }

  /** Ends the generation named `id` after the token being drawn (see Engine.stopGeneration). */
  stop(id: string): void {
    if (this.generating.has(id)) this.stopped.add(id);
  }

  /** Queues `attempt` as generation `opts.id` (urgent, or `opts.background`), until it gives a result. */
  async generate(opts: Partial<Pick<GenerateOptions, 'id' | 'background'>>, onToken: OnToken | undefined, attempt: Attempt): Promise<GenerateResult> {
    const id = opts.id || undefined;
    if (id) this.generating.add(id);
    const stopped = () => this.isStopped(id);
    try {
      if (!opts.background) return (await this.exclusive(() => attempt(onToken, stopped), true))!;
      // Background work yields to generation someone waits for: it waits while such a call is queued, and
      // when one arrives mid-generation it stops and queues again behind it (other work, a run starting or
      // an export, waits for it as for any generation). A rerun streams the same tokens (same seed),
      // so only text longer than what was sent before goes out: the page sees one steady stream.
      const sent: string[] = [];
      const stream = (k: number, text: string) => {
        if (text.length <= (sent[k]?.length ?? 0)) return;
        sent[k] = text;
        return onToken?.(k, text);
      };
      for (;;) {
        const r = await this.exclusive(async () => (this.waiting > 0 && !stopped() ? undefined : attempt(stream, () => stopped() || this.waiting > 0)));
        // stopped in a rerun: what an earlier run wrote may be further along
        if (r) return { ...r, texts: r.texts.map((t, k) => (r.finish[k] === 'interrupted' && (sent[k]?.length ?? 0) > t.length ? sent[k]! : t)) };
      }
    } finally {
      if (id) {
        this.generating.delete(id);
        this.stopped.delete(id);
      }
      // a callback that came through comlink is a proxy to the page: let it go with the generation
      release(onToken);
    }
  }
}

/** Text up to the first stop string. */
const cut = (text: string, stop: string[]) => {
  const i = findStop(text, stop);
  return i < 0 ? text : text.slice(0, i);
};

/**
 * K samples of `prompt` (with the chat template) on `g`, decoded as they stream; stop strings are cut from
 * the texts. `interrupt` ends it between tokens: with the texts so far when `stopped` says the call was
 * stopped, else undefined (a background generation giving way, to be run again).
 */
export async function sample(
  g: Generator,
  tok: Tok,
  prompt: string,
  opts: Partial<GenerateOptions>,
  onToken: OnToken | undefined,
  interrupt: () => boolean,
  stopped: () => boolean,
): Promise<GenerateResult | undefined> {
  const o = { ...GENERATE_DEFAULTS, stop: [] as string[], ...opts }; // the schema's defaults (GENERATE_OPTIONS)
  const ids = tok.encodePrompt(prompt);
  const streams = Array.from({ length: o.numSamples }, () => new StreamDecoder(tok, ids, { skipSpecialTokens: true }));
  const texts = Array<string>(o.numSamples).fill('');
  const r = await g.generate(
    ids,
    {
      ...GENERATE_DEFAULTS,
      numSamples: o.numSamples,
      maxNewTokens: o.maxNewTokens,
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      seed: o.seed,
      stopTokenIds: tok.eosTokenIds,
      stopWhen: (k) => findStop(texts[k]!, o.stop) >= 0,
      interrupt,
    },
    (k, id) => {
      const piece = streams[k]!.push(id);
      if (!piece) return;
      texts[k] += piece;
      void notify(() => onToken?.(k, cut(texts[k]!, o.stop)));
    },
  );
  if (r.interrupted && !stopped()) return undefined;
  return { texts: texts.map((t, k) => cut(t + streams[k]!.flush(), o.stop)), finish: r.finish };
}

/** The result of a generation stopped before it started: no text. */
export const notStarted = (n: number): GenerateResult => ({ texts: Array<string>(n).fill(''), finish: Array<FinishReason>(n).fill('interrupted') });
