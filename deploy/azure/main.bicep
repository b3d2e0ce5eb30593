// voxfleet on Azure: AKS, PostgreSQL Flexible Server, Azure Managed Redis,
// Key Vault, Azure OpenAI, a registry, monitoring, and one workload identity per
// role. Deploy into a resource group (docs/deploy-aks.md):
//   az deployment group create -g <rg> -f deploy/azure/main.bicep -p deploy/azure/main.bicepparam
// The outputs are the Helm chart's values (deploy/helm/voxfleet).
targetScope = 'resourceGroup'

@description('Azure region of everything.')
param location string = resourceGroup().location

@minLength(3)
@maxLength(16)
@description('Prefix of every resource name (lowercase letters and digits).')
param name string

@description('Tags on every resource.')
param tags object = { app: 'voxfleet' }

@description('Kubernetes version of the cluster.')
param kubernetesVersion string

@description('Availability zones (empty where the region has none).')
param zones array = ['1', '2', '3']

@description('Agents pool size bounds for the cluster autoscaler.')
param agentNodeCount object = { min: 1, max: 17 }

@description('Addresses allowed to reach the Kubernetes API server.')
param apiServerAuthorizedIpRanges array = []

@description('Entra ID groups that administer the cluster.')
param adminGroupObjectIds array = []

@allowed(['none', 'cloud', 'selfhosted'])
@description('LiveKit: none (WebSocket transport only), LiveKit Cloud, or self-hosted on its own node pool.')
param livekitMode string = 'none'

@description('PostgreSQL zone-redundant high availability.')
param postgresZoneRedundantHa bool = true

@secure()
@description('PostgreSQL administrator password.')
param postgresAdminPassword string

@secure()
@description('VOXFLEET_SECRET_KEY: signs media tokens (at least 16 characters; `openssl rand -hex 32`).')
param appSecretKey string

@secure()
@description('VOXFLEET_ADMIN_API_KEY: bearer key of the monitor\'s API, for automation.')
param adminApiKey string

@secure()
@description('VOXFLEET_SCALING_TOKEN: opens the monitor\'s /api/scaling only (KEDA\'s bearer token).')
param scalingToken string

@secure()
@description('VOXFLEET_MONITOR_ADMIN_PASSWORD: the monitor\'s first admin\'s password.')
param monitorAdminPassword string

@secure()
@description('LiveKit API key (livekitMode cloud or selfhosted).')
param livekitApiKey string = ''

@secure()
@description('LiveKit API secret (livekitMode cloud or selfhosted).')
param livekitApiSecret string = ''

@description('LiveKit Cloud URL, wss://<project>.livekit.cloud (livekitMode cloud).')
param livekitUrl string = ''

@description('Azure OpenAI model deployments.')
param openAiDeployments array = [
  { name: 'chat', model: 'gpt-4o-mini', version: '2024-07-18', sku: 'GlobalStandard', capacity: 50 }
  { name: 'transcribe', model: 'gpt-4o-mini-transcribe', version: '2025-03-20', sku: 'GlobalStandard', capacity: 50 }
  { name: 'tts', model: 'gpt-4o-mini-tts', version: '2025-03-20', sku: 'GlobalStandard', capacity: 50 }
]

@description('Kubernetes namespace the chart is installed in.')
param namespace string = 'voxfleet'

@description('The chart\'s fullname: ServiceAccounts are <prefix>-<role> ("voxfleet" for `helm install voxfleet`).')
param serviceAccountPrefix string = 'voxfleet'

// Roles with an identity, and the Key Vault secrets (files) each one reads; the
// chart mounts the same files (templates/_helpers.tpl, voxfleet.secretFiles).
// `principal` indexes `roles`.
var roles = ['landing', 'agent', 'monitor', 'migration', 'livekit']
var baseGrants = [
  { principal: 0, secret: 'voxfleet-secret-key' }
  { principal: 0, secret: 'voxfleet-database-url' }
  { principal: 0, secret: 'voxfleet-redis-url' }
  { principal: 1, secret: 'voxfleet-secret-key' }
  { principal: 1, secret: 'voxfleet-database-url' }
  { principal: 1, secret: 'voxfleet-redis-url' }
  { principal: 2, secret: 'voxfleet-secret-key' }
  { principal: 2, secret: 'voxfleet-database-url' }
  { principal: 2, secret: 'voxfleet-redis-url' }
  { principal: 2, secret: 'voxfleet-admin-api-key' }
  { principal: 2, secret: 'voxfleet-scaling-token' }
  { principal: 2, secret: 'voxfleet-monitor-admin-password' }
  { principal: 3, secret: 'voxfleet-secret-key' }
  { principal: 3, secret: 'voxfleet-database-url' }
]
// Landing (tokens) and agents (joining rooms) use the LiveKit API key.
var livekitKeyGrants = [
  { principal: 0, secret: 'voxfleet-livekit-api-key' }
  { principal: 0, secret: 'voxfleet-livekit-api-secret' }
  { principal: 1, secret: 'voxfleet-livekit-api-key' }
  { principal: 1, secret: 'voxfleet-livekit-api-secret' }
]
var livekitCloudGrants = [
  { principal: 0, secret: 'voxfleet-livekit-url' }
  { principal: 1, secret: 'voxfleet-livekit-url' }
]
var livekitServerGrants = [
  { principal: 4, secret: 'voxfleet-livekit-keys' }
  { principal: 4, secret: 'voxfleet-redis-password' }
]
var livekitGrants = concat(livekitKeyGrants, livekitMode == 'cloud' ? livekitCloudGrants : livekitServerGrants)
var grants = livekitMode == 'none' ? baseGrants : concat(baseGrants, livekitGrants)
var baseSecrets = [
  'voxfleet-secret-key'
  'voxfleet-database-url'
  'voxfleet-redis-url'
  'voxfleet-redis-password'
  'voxfleet-admin-api-key'
  'voxfleet-scaling-token'
  'voxfleet-monitor-admin-password'
]
var livekitSecrets = ['voxfleet-livekit-api-key', 'voxfleet-livekit-api-secret', livekitMode == 'cloud' ? 'voxfleet-livekit-url' : 'voxfleet-livekit-keys']
var secretNames = livekitMode == 'none' ? baseSecrets : concat(baseSecrets, livekitSecrets)

module network 'modules/network.bicep' = {
  name: '${name}-network'
  params: {
    location: location
    name: name
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: '${name}-monitoring'
  params: {
    location: location
    name: name
    tags: tags
  }
}

module aks 'modules/aks.bicep' = {
  name: '${name}-aks'
  params: {
    location: location
    name: name
    tags: tags
    kubernetesVersion: kubernetesVersion
    zones: zones
    agentCount: agentNodeCount
    enableLivekitPool: livekitMode == 'selfhosted'
    nodesSubnetId: network.outputs.nodesSubnetId
    livekitSubnetId: network.outputs.livekitSubnetId
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    apiServerAuthorizedIpRanges: apiServerAuthorizedIpRanges
    adminGroupObjectIds: adminGroupObjectIds
  }
}

module registry 'modules/registry.bicep' = {
  name: '${name}-registry'
  params: {
    location: location
    name: '${replace(name, '-', '')}acr'
    tags: tags
    kubeletObjectId: aks.outputs.kubeletObjectId
  }
}

module identities 'modules/identities.bicep' = {
  name: '${name}-identities'
  params: {
    location: location
    name: name
    tags: tags
    roles: roles
    oidcIssuerUrl: aks.outputs.oidcIssuerUrl
    namespace: namespace
    serviceAccountPrefix: serviceAccountPrefix
  }
}

module postgres 'modules/postgres.bicep' = {
  name: '${name}-postgres'
  params: {
    location: location
    name: name
    tags: tags
    subnetId: network.outputs.postgresSubnetId
    vnetId: network.outputs.vnetId
    adminPassword: postgresAdminPassword
    zoneRedundantHa: postgresZoneRedundantHa
  }
}

module redis 'modules/redis.bicep' = {
  name: '${name}-redis'
  params: {
    location: location
    name: name
    tags: tags
    endpointsSubnetId: network.outputs.endpointsSubnetId
    vnetId: network.outputs.vnetId
  }
}

module openai 'modules/openai.bicep' = {
  name: '${name}-openai'
  params: {
    location: location
    name: name
    tags: tags
    deployments: openAiDeployments
    userPrincipalIds: [identities.outputs.identities[1].principalId]
    endpointsSubnetId: network.outputs.endpointsSubnetId
    vnetId: network.outputs.vnetId
  }
}

// The Redis access key, read from the deployed database for the connection URL.
resource redisDatabase 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' existing = {
  name: '${name}-redis/default'
  dependsOn: [redis]
}

var redisKey = redisDatabase.listKeys().primaryKey
var pgUser = postgres.outputs.adminLogin

module keyVault 'modules/keyvault.bicep' = {
  name: '${name}-keyvault'
  params: {
    location: location
    name: name
    tags: tags
    secretNames: secretNames
    secrets: {
      'voxfleet-secret-key': appSecretKey
      'voxfleet-admin-api-key': adminApiKey
      'voxfleet-scaling-token': scalingToken
      'voxfleet-monitor-admin-password': monitorAdminPassword
      'voxfleet-database-url': 'postgresql+asyncpg://${pgUser}:${uriComponent(postgresAdminPassword)}@${postgres.outputs.fqdn}:5432/${postgres.outputs.databaseName}?ssl=require'
      'voxfleet-redis-url': 'rediss://:${uriComponent(redisKey)}@${redis.outputs.host}:${redis.outputs.port}/0'
      'voxfleet-redis-password': redisKey
      'voxfleet-livekit-api-key': livekitApiKey
      'voxfleet-livekit-api-secret': livekitApiSecret
      'voxfleet-livekit-url': livekitUrl
      'voxfleet-livekit-keys': '${livekitApiKey}: ${livekitApiSecret}'
    }
    grants: grants
    principals: identities.outputs.identities
    endpointsSubnetId: network.outputs.endpointsSubnetId
    vnetId: network.outputs.vnetId
  }
}

// Everything the chart's values need (docs/deploy-aks.md turns these into a values file).
output aksName string = aks.outputs.name
output registryLoginServer string = registry.outputs.loginServer
output keyVaultName string = keyVault.outputs.name
output tenantId string = subscription().tenantId
output workloadIdentities array = identities.outputs.identities
output postgresFqdn string = postgres.outputs.fqdn
output redisHost string = redis.outputs.host
output openAiEndpoint string = openai.outputs.endpoint
output subnetCidrs object = network.outputs.cidrs
