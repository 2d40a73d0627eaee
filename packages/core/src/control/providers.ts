import { InvalidRequestError, UnsupportedError } from '../errors.js';
import type { Capability, Provider } from '../providers/provider.js';

/** The configured providers by name, and which one serves a request that names none. */
export class ProviderRegistry {
  readonly #byName = new Map<string, Provider>();
  readonly defaultName: string | undefined;

  constructor(providers: readonly Provider[], defaultName?: string) {
    for (const p of providers) {
      if (this.#byName.has(p.name)) throw new InvalidRequestError({ message: `two providers are named ${p.name}` });
      this.#byName.set(p.name, p);
    }
    if (defaultName !== undefined && !this.#byName.has(defaultName))
      throw new InvalidRequestError({
        message: `defaultProvider ${defaultName} is not configured`,
        field: 'defaultProvider',
      });
    this.defaultName = defaultName ?? providers[0]?.name;
  }

  /** The named provider, or the default; a typed 400 when there is none of that name. */
  resolve(name?: string): Provider {
    const wanted = name ?? this.defaultName;
    const p = wanted === undefined ? undefined : this.#byName.get(wanted);
    if (!p)
      throw new InvalidRequestError({
        message:
          wanted === undefined
            ? 'no provider is configured'
            : `no provider named ${JSON.stringify(wanted)} (configured: ${[...this.#byName.keys()].join(', ') || 'none'})`,
        field: 'provider',
      });
    return p;
  }

  get(name: string): Provider | undefined {
    return this.#byName.get(name);
  }

  all(): Provider[] {
    return [...this.#byName.values()];
  }

  /** Throws the typed unsupported error when `provider` lacks `capability`. */
  static require(provider: Provider, capability: Capability): void {
    if (!provider.capabilities.has(capability)) throw new UnsupportedError({ provider: provider.name, capability });
  }
}
