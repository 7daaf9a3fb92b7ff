// Likes full, careful answers: on topic, several sentences, without repeating itself.
import { onTopic, repetition, sentences, words, type Labeler } from '../labeler.ts';

export const thorough: Labeler = {
  name: 'thorough',
  taste: 'detailed answers of several sentences that stay on topic and do not repeat themselves',
  noise: 0.5,
  score: (prompt, completion) =>
    2 * onTopic(prompt, completion) + 0.7 * Math.min(3, sentences(completion)) + 0.03 * Math.min(40, words(completion).length) - 5 * repetition(completion),
};
