// Key Vault with Azure RBAC (no access policies): voxfleet's secrets, each read
// only by the roles that need it (a role assignment per role and secret), through
// the Secrets Store CSI driver. Pods reach it over a private endpoint.

@description('Azure region.')
param location string

@description('Prefix of every resource name.')
param name string

@description('Tags on every resource.')
param tags object

@description('Secrets to store: name -> value.')
@secure()
param secrets object

@description('Names of the secrets (the keys of `secrets`; known before deployment, for the loops).')
param secretNames array

@description('Who reads what: [{ principal: <index into principals>, secret: <name> }].')
param grants array

@description('The role identities: [{ role, clientId, principalId }].')
param principals array

@description('Private endpoint subnet.')
param endpointsSubnetId string

@description('The virtual network the private DNS zone is linked to.')
param vnetId string

var secretsUser = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: '${name}-kv'
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    // Secrets are written by this deployment (through Azure Resource Manager) and
    // read from the cluster through the private endpoint: no public access.
    publicNetworkAccess: 'Disabled'
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
    }
  }
}

resource stored 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for secretName in secretNames: {
  // checkov:skip=CKV_AZURE_41:the app reads secrets as files the CSI driver refreshes; an expiry would stop it, so rotation is a procedure (docs/deploy-aks.md) rather than a date
  parent: vault
  name: secretName
  properties: {
    value: secrets[secretName]
    contentType: 'text/plain'
  }
}]

resource reads 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in grants: {
  name: guid(vault.id, string(grant.principal), grant.secret)
  scope: stored[indexOf(secretNames, grant.secret)]
  properties: {
    roleDefinitionId: secretsUser
    principalId: principals[grant.principal].principalId
    principalType: 'ServicePrincipal'
  }
}]

module endpoint 'private-endpoint.bicep' = {
  name: '${name}-kv-pe'
  params: {
    location: location
    name: '${name}-kv-pe'
    tags: tags
    serviceId: vault.id
    groupId: 'vault'
    dnsZone: 'privatelink.vaultcore.azure.net'
    subnetId: endpointsSubnetId
    vnetId: vnetId
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
