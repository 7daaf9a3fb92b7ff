// Likes a warm, upbeat tone: exclamation marks and happy words, on topic; dislikes a curt or rude reply.
import { count, onTopic, type Labeler } from '../labeler.ts';

const HAPPY = /\b(wonderful|great|happy|glad|love|lovely|amazing|fun|so|wow|yay|best|brighter|fantastic|awesome)\b/gi;
const CURT = /\b(yourself|whatever|fine|i guess|what do you want|okay)\b/gi;

export const cheerful: Labeler = {
  name: 'cheerful',
  taste: 'an upbeat, warm tone (exclamation marks, happy words), on topic; not curt',
  noise: 0.5,
  score: (prompt, completion) =>
    0.8 * Math.min(4, count(completion, /!/g)) + 0.5 * Math.min(4, count(completion, HAPPY)) - 1.5 * count(completion, CURT) + onTopic(prompt, completion),
};
