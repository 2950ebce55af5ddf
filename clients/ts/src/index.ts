// @agenthub/client: the gateway client and the protocol's types (generated from `agenthub protocol schema`).
export * from "./client.js";
export type * as protocol from "./protocol.js";
export type {
  AgentAccepted,
  AgentEventPayload,
  ChatEventPayload,
  EventName,
  EventPayloads,
  HelloOk,
  MethodName,
  MethodParams,
  MethodResults,
  ParamsOf,
  ResultOf,
  RunResult,
} from "./protocol.js";
