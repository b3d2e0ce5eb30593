// The container registry the cluster pulls voxfleet's image from (the kubelet
// identity gets AcrPull; no admin user).

@description('Azure region.')
param location string

@description('Registry name (globally unique, alphanumeric).')
param name string

@description('Tags on every resource.')
param tags object

@description('Object ID of the cluster\'s kubelet identity.')
param kubeletObjectId string

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  // checkov:skip=CKV_AZURE_166:quarantine needs a scanning pipeline that releases images; Microsoft Defender for Containers scans this registry instead
  // checkov:skip=CKV_AZURE_139:images are pushed from a workstation or CI outside the virtual network
  // checkov:skip=CKV_AZURE_165:geo-replication is a cost choice for multi-region installs
  // checkov:skip=CKV_AZURE_233:zone redundancy is set per region by the service for Premium
  // checkov:skip=CKV_AZURE_237:a dedicated data endpoint matters with firewall rules, which this registry does not use
  name: name
  location: location
  tags: tags
  sku: { name: 'Premium' }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
    policies: {
      retentionPolicy: { status: 'enabled', days: 30 }
      trustPolicy: { status: 'disabled', type: 'Notary' }
      quarantinePolicy: { status: 'disabled' }
    }
  }
}

resource pull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, kubeletObjectId, 'acrpull')
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '7f951dda-4ed3-4680-a7ca-43fe172d538d')
    principalId: kubeletObjectId
    principalType: 'ServicePrincipal'
  }
}

output loginServer string = registry.properties.loginServer
