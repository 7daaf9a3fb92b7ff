// The simulated labelers the experiment ships, by name.
import type { Labeler } from '../labeler.ts';
import { cheerful } from './cheerful.ts';
import { concise } from './concise.ts';
import { thorough } from './thorough.ts';

export const LABELERS: Readonly<Record<string, Labeler>> = { concise, cheerful, thorough };
