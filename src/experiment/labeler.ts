// A simulated labeler: a person's taste written as a score of (prompt, completion), plus the noise every
// person has. Judgments follow Bradley-Terry: the labeler prefers A to B with probability
// sigmoid((score(A) - score(B)) / noise), so clear differences are judged the same way almost always
// and near-ties are coin flips, as with people (InstructGPT's labelers agreed with each other 72.6% of
// the time). Each labeler lives in its own file under ./labelers/, its taste written as a few named
// features of the text and the weight it gives each: its score is their weighted sum. Naming them lets the
// experiment ask how well a reward model could do at best (featureFit): a model that looks at exactly
// these features, fitted to the same noisy rankings.
import { Rng } from '../shared/sampling.ts';

/** One thing a labeler looks at, and how much it counts (score units per unit of the feature). */
export interface Feature {
  readonly weight: number;
  of(prompt: string, completion: string): number;
}

export interface Labeler {
  readonly name: string;
  /** One line: what this labeler likes. */
  readonly taste: string;
  /** Bradley-Terry temperature, in score units: larger = noisier. */
  readonly noise: number;
  /** What it looks at; its score is their weighted sum. */
  readonly features: Readonly<Record<string, Feature>>;
  /** The labeler's private, noise-free opinion of a completion. */
  score(prompt: string, completion: string): number;
}

/** A labeler whose score is the weighted sum of its features, in their order. */
export function labeler(spec: Omit<Labeler, 'score'>): Labeler {
  const fs = Object.values(spec.features);
  return { ...spec, score: (prompt, completion) => fs.reduce((s, f) => s + f.weight * f.of(prompt, completion), 0) };
}

export const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** P(labeler prefers a to b). Equal scores are a coin flip. */
export function preferProb(l: Labeler, prompt: string, a: string, b: string): number {
  return sigmoid((l.score(prompt, a) - l.score(prompt, b)) / l.noise);
}

/**
 * The labeler ranks K completions of one prompt, as a person does in the Rank view: each completion's
 * score is perturbed by logistic noise of scale `noise` (which makes every pairwise choice Bradley-Terry
 * with that temperature) and the completions are sorted by it. Identical texts tie. Returns ranks
 * (0 = best) in the JSONL line's convention.
 */
export function rankCompletions(l: Labeler, prompt: string, completions: string[], rng: Rng): number[] {
  // Gumbel noise of scale `noise` on each score and a sort (Plackett-Luce): the difference of two such
  // Gumbels is logistic, so every pair in the ranking is judged with exactly preferProb's odds
  const noisy = completions.map((c) => {
    const u = Math.min(1 - 1e-12, Math.max(1e-12, rng.next()));
    return l.score(prompt, c) - l.noise * Math.log(-Math.log(u));
  });
  // identical texts get one rank (a tie); the others go by their noisy score
  const order = completions.map((_, i) => i).sort((i, j) => noisy[j]! - noisy[i]!);
  const ranks = new Array<number>(completions.length);
  let rank = 0;
  order.forEach((i, n) => {
    const same = order.slice(0, n).find((j) => completions[j] === completions[i]);
    ranks[i] = same !== undefined ? ranks[same]! : rank++;
  });
  return ranks;
}

/** One pairwise judgment with fresh noise: 1 = a wins, 0 = b wins, 0.5 = a tie (the same text). */
export function judge(l: Labeler, prompt: string, a: string, b: string, rng: Rng): number {
  if (a === b) return 0.5;
  return rng.next() < preferProb(l, prompt, a, b) ? 1 : 0;
}

// ---- small text measures the labelers' tastes are written with ----

export const words = (text: string): string[] => text.toLowerCase().match(/[a-z']+/g) ?? [];

// words of a request that say what to do rather than what it is about
const INSTRUCTION = new Set(
  `a an the and or of to for in on at by with my me i you your is are am be do does how what who
  why when which can could should would will give tell write say make describe explain suggest list name start begin help
  one two three short few some good new simple first lines any tip them they their it its this that there about like
  feel feeling need things thing people use used get better want sentence words note story steps report during`.split(/\s+/),
);

/** The words of the prompt that say what it is about (names, objects, places). */
export function topicWords(prompt: string): string[] {
  return [...new Set(words(prompt).filter((w) => w.length > 2 && !INSTRUCTION.has(w)))];
}

/** 1 when the completion mentions what the prompt is about (any of its topic words), else 0. */
export function onTopic(prompt: string, completion: string): number {
  const said = new Set(words(completion));
  return topicWords(prompt).some((w) => said.has(w) || said.has(w.replace(/s$/, ''))) ? 1 : 0;
}

/** Share of repeated words, 0 (all different) .. near 1 (one word over and over): rambling. */
export function repetition(completion: string): number {
  const ws = words(completion);
  return ws.length ? 1 - new Set(ws).size / ws.length : 0;
}

export const sentences = (completion: string): number => (completion.match(/[^.!?]+[.!?]+/g) ?? []).length;
export const count = (text: string, re: RegExp): number => (text.match(re) ?? []).length;
