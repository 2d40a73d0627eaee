import { redactText } from '@vmplane/common';

/**
 * A function that removes the given secrets, and anything common's redaction recognises (tickets,
 * tokens, keys), from a text before it is journalled. Providers never put secrets in messages;
 * this is the net under them, since a backend's error may quote what it was sent.
 */
export function scrubber(secrets: readonly string[] | undefined): (text: string) => string {
  const list = (secrets ?? []).filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const s of list) {
      out = out.split(s).join('[redacted]');
      const encoded = encodeURIComponent(s);
      if (encoded !== s) out = out.split(encoded).join('[redacted]');
    }
    return redactText(out);
  };
}
