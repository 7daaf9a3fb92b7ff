// Likes short answers that still answer: on topic, in as few words as it takes, never rambling.
import { onTopic, repetition, words, type Labeler } from '../labeler.ts';

export const concise: Labeler = {
  name: 'concise',
  taste: 'short answers that stay on topic; every extra word costs',
  noise: 0.5,
  score: (prompt, completion) => 2 * onTopic(prompt, completion) - 0.08 * words(completion).length - 3 * repetition(completion),
};
