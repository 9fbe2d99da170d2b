/** Wording shared by the server's messages, the CLI and the web. Dependency-free (`@latchkey/core/words`). */

/** "1 secret", "2 secrets", "0 secrets"; `many` for irregular plurals ("1 is", "2 are" is not this). */
export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}

/** A sentence as a clause inside another ("data.apiKey: …; data.region: …"): without its closing full stop. */
export function asClause(sentence: string): string {
  return sentence.replace(/\.$/, '');
}

/** Text as a sentence of its own: a full stop at the end unless it ends one already. The case is kept. */
export function asSentence(text: string): string {
  return /[.!?…]$/.test(text) ? text : `${text}.`;
}
