// Likes short answers that still answer: on topic, in as few words as it takes, never rambling.
import { labeler, onTopic, repetition, words } from '../labeler.ts';

export const concise = labeler({
  name: 'concise',
  taste: 'short answers that stay on topic; every extra word costs',
  noise: 0.5,
  features: {
    on_topic: { weight: 2, of: onTopic },
    words: { weight: -0.08, of: (_, c) => words(c).length },
    repetition: { weight: -3, of: (_, c) => repetition(c) },
  },
});
