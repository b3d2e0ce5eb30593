// One user-assigned managed identity per role, federated with that role's
// Kubernetes ServiceAccount through the cluster's OIDC issuer (Azure workload
// identity): a landing pod can read the landing's secrets and nothing else.

@description('Azure region.')
param location string

@description('Prefix of every resource name.')
param name string

@description('Tags on every resource.')
param tags object

@description('Roles that get an identity, in the order of the outputs.')
param roles array

@description('The AKS cluster\'s OIDC issuer URL.')
param oidcIssuerUrl string

@description('Kubernetes namespace of the release.')
param namespace string

@description('ServiceAccount names are <serviceAccountPrefix>-<role> (the chart\'s fullname: "voxfleet" for `helm install voxfleet`).')
param serviceAccountPrefix string

resource identities 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = [for role in roles: {
  name: '${name}-${role}'
  location: location
  tags: tags
}]

resource federations 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = [for (role, i) in roles: {
  parent: identities[i]
  name: 'kubernetes-${role}'
  properties: {
    issuer: oidcIssuerUrl
    subject: 'system:serviceaccount:${namespace}:${serviceAccountPrefix}-${role}'
    audiences: ['api://AzureADTokenExchange']
  }
}]

output identities array = [for (role, i) in roles: {
  role: role
  clientId: identities[i].properties.clientId
  principalId: identities[i].properties.principalId
}]
