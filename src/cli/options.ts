// What the subcommands share about their options. commander checks its mandatory options before it
// refuses unknown ones, so `sft --frobnicate` would complain about a missing --model instead of naming
// --frobnicate; required options are ours, checked in a preAction hook that runs after commander has
// refused unknown options and stray arguments.
import type { Command } from 'commander';
import { Option } from 'commander';

/** A mistake in the command line: one line on stderr and exit code 2. */
export class UsageError extends Error {}

const REQUIRED = new WeakSet<Option>();

/** An option the command cannot run without; its help says so. */
export function required(flags: string, description: string): Option {
  const o = new Option(flags, `${description} (required)`);
  REQUIRED.add(o);
  return o;
}

/** The preAction hook (on the program, so it runs for every subcommand): the first required option missing. */
export function checkRequired(_program: Command, action: Command): void {
  const missing = action.options.find((o) => REQUIRED.has(o) && action.getOptionValue(o.attributeName()) === undefined);
  if (missing) throw new UsageError(`${missing.flags.replace(/[<>]/g, '')} is required`);
}
