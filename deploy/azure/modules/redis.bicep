// Azure Managed Redis (Microsoft.Cache/redisEnterprise; Azure Cache for Redis
// is being retired): TLS only, reached through a private endpoint. Non-clustered
// (NoCluster): voxfleet's Lua scripts touch a room's keys and the shared
// vf:rooms hash together, which a clustered database would refuse (CROSSSLOT).

@description('Azure region.')
param location string

@description('Prefix of every resource name.')
param name string

@description('Tags on every resource.')
param tags object

@description('SKU (Balanced_B1 ... ; NoCluster needs a size up to 25 GB).')
param skuName string = 'Balanced_B1'

@description('Private endpoint subnet.')
param endpointsSubnetId string

@description('The virtual network the private DNS zone is linked to.')
param vnetId string

resource cluster 'Microsoft.Cache/redisEnterprise@2025-07-01' = {
  name: '${name}-redis'
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    minimumTlsVersion: '1.2'
    highAvailability: 'Enabled'
    publicNetworkAccess: 'Disabled'
  }
}

resource database 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = {
  parent: cluster
  name: 'default'
  properties: {
    clientProtocol: 'Encrypted'
    port: 10000
    clusteringPolicy: 'NoCluster'
    evictionPolicy: 'NoEviction'
    // voxfleet authenticates with the access key (VOXFLEET_REDIS_URL).
    accessKeysAuthentication: 'Enabled'
    persistence: {
      aofEnabled: true
      aofFrequency: '1s'
    }
  }
}

module endpoint 'private-endpoint.bicep' = {
  name: '${name}-redis-pe'
  params: {
    location: location
    name: '${name}-redis-pe'
    tags: tags
    serviceId: cluster.id
    groupId: 'redisEnterprise'
    dnsZone: 'privatelink.redis.azure.net'
    subnetId: endpointsSubnetId
    vnetId: vnetId
  }
}

output host string = cluster.properties.hostName
output port int = database.properties.port
output databaseId string = database.id
