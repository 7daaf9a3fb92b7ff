// Likes a warm, upbeat tone: exclamation marks and happy words, on topic; dislikes a curt or rude reply.
import { count, labeler, onTopic } from '../labeler.ts';

const HAPPY = /\b(wonderful|great|happy|glad|love|lovely|amazing|fun|so|wow|yay|best|brighter|fantastic|awesome)\b/gi;
const CURT = /\b(yourself|whatever|fine|i guess|what do you want|okay)\b/gi;

export const cheerful = labeler({
  name: 'cheerful',
  taste: 'an upbeat, warm tone (exclamation marks, happy words), on topic; not curt',
  noise: 0.5,
  features: {
    exclamation_marks: { weight: 0.8, of: (_, c) => Math.min(4, count(c, /!/g)) },
    happy_words: { weight: 0.5, of: (_, c) => Math.min(4, count(c, HAPPY)) },
    curt_words: { weight: -1.5, of: (_, c) => count(c, CURT) },
    on_topic: { weight: 1, of: onTopic },
  },
});
