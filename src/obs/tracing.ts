// Optional OpenTelemetry tracing (otel.endpoint): one span per request, continuing the agent's
// own trace when it sent a W3C `traceparent`, exported over OTLP/HTTP. Absent, nothing is done.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, type Span, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface TracingOptions {
  /** the OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces */
  readonly endpoint: string;
  readonly serviceName: string;
}

/** What a request's span ends with: the decision and, once known, the outcome. */
export type SpanAttributes = Readonly<Record<string, string | number | boolean>>;

/** One request's span; `traceId` goes into its audit records. */
export interface RequestSpan {
  readonly traceId: string;
  set(attributes: SpanAttributes): void;
  /** `failed` marks the span an error (a refusal is not one: the request was decided) */
  end(failed?: boolean): void;
}

const propagator = new W3CTraceContextPropagator();
const headerGetter = {
  keys: (carrier: Readonly<Record<string, string>>) => Object.keys(carrier),
  get: (carrier: Readonly<Record<string, string>>, key: string) => carrier[key],
};

export class Tracing {
  readonly #provider: BasicTracerProvider;
  readonly #tracer: Tracer;

  constructor(options: TracingOptions) {
    const exporter = new OTLPTraceExporter({ url: options.endpoint });
    this.#provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': options.serviceName }),
      spanProcessors: [new BatchSpanProcessor(exporter)],
    });
    this.#tracer = this.#provider.getTracer('sluice');
  }

  /**
   * Starts a request's span, as a child of `traceparent` when it is a valid W3C header (an
   * invalid one is ignored, as the spec requires: a new trace starts).
   */
  startRequest(name: string, traceparent: string | undefined, attributes: SpanAttributes): RequestSpan {
    const parent = traceparent === undefined ? ROOT_CONTEXT : propagator.extract(ROOT_CONTEXT, { traceparent }, headerGetter);
    const span: Span = this.#tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
    return {
      traceId: span.spanContext().traceId,
      set: (more) => span.setAttributes(more),
      end: (failed = false) => {
        if (failed) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      },
    };
  }

  /** Exports what is buffered, then stops. */
  shutdown(): Promise<void> {
    return this.#provider.shutdown();
  }
}
