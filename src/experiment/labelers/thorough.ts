// Likes full, careful answers: on topic, several sentences, without repeating itself.
import { labeler, onTopic, repetition, sentences, words } from '../labeler.ts';

export const thorough = labeler({
  name: 'thorough',
  taste: 'detailed answers of several sentences that stay on topic and do not repeat themselves',
  noise: 0.5,
  features: {
    on_topic: { weight: 2, of: onTopic },
    sentences: { weight: 0.7, of: (_, c) => Math.min(3, sentences(c)) },
    words: { weight: 0.03, of: (_, c) => Math.min(40, words(c).length) },
    repetition: { weight: -5, of: (_, c) => repetition(c) },
  },
});
