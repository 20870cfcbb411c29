-- Argo CD health check for agentry.dev/v1alpha1 Agent, from its status conditions.
-- Install it as the argocd-cm key resource.customizations.health.agentry.dev_Agent
-- (see argocd-cm-patch.yaml beside this file).
--   Healthy:     Ready=True, for the current generation, every tool target found.
--   Degraded:    Stalled=True or Degraded=True (an invalid spec, a missing system prompt source,
--                failing pods), or a tool target that does not exist.
--   Progressing: anything else, including a status not yet written for the current generation.
local hs = {}

local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Agentry operator to report status"
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the Agentry operator to observe the latest spec"
  return hs
end

for _, kind in ipairs({ "Stalled", "Degraded" }) do
  local c = condition(kind)
  if c ~= nil and c.status == "True" then
    hs.status = "Degraded"
    hs.message = (c.reason or kind) .. ": " .. (c.message or "")
    return hs
  end
end

local tools = condition("ToolsResolved")
if tools ~= nil and tools.status == "False" then
  hs.status = "Degraded"
  hs.message = (tools.reason or "ToolsResolved") .. ": " .. (tools.message or "")
  return hs
end

local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
  return hs
end

hs.status = "Progressing"
if ready ~= nil and ready.message ~= nil then
  hs.message = ready.message
else
  hs.message = "Waiting for the Agent to become Ready"
end
return hs
