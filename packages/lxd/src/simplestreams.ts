/** SimpleStreams image servers (being filled in). */
export class SimpleStreamsClient {
  constructor(readonly url: string) {}
}
