; Inno Setup script for the Chroma Studio installer (Inno Setup 6.3 or newer).
; Compiled by build.ps1, which passes:
;   /DAppVersion=0.1.0  /DDistDir=<PyInstaller folder ChromaStudio>  /DIconFile=<.ico>  /DOutputDir=<folder>
; and, to sign, /DSignToolName=chromastudio with /Schromastudio=<signtool command ... $f>.
;
; Per-user install (no administrator rights): the program goes to %LOCALAPPDATA%\Programs\Chroma Studio,
; its downloaded Python environment to %LOCALAPPDATA%\ChromaStudio. A folder named "wheels" beside
; this setup program is copied along and makes the first start work offline.

#define AppName "Chroma Studio"
#define AppExe "ChromaStudio.exe"
#ifndef AppVersion
  #error Pass /DAppVersion=<version> (build.ps1 does)
#endif
#ifndef DistDir
  #error Pass /DDistDir=<PyInstaller output folder> (build.ps1 does)
#endif
#ifndef OutputDir
  #define OutputDir "."
#endif

[Setup]
; Keep AppId unchanged across releases: it is how an update finds the installed copy.
AppId={{8C3F4A52-6E0B-4F0A-9D3B-2B7C61E4A9D7}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=Chroma Studio
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir={#OutputDir}
OutputBaseFilename=ChromaStudio-{#AppVersion}-windows-x64-setup
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
CloseApplications=yes
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
#ifdef IconFile
SetupIconFile={#IconFile}
#endif
#ifdef SignToolName
SignTool={#SignToolName}
SignedUninstaller=yes
#endif

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
#ifdef SignToolName
Source: "{#DistDir}\{#AppExe}"; DestDir: "{app}"; Flags: ignoreversion sign
Source: "{#DistDir}\_internal\uv.exe"; DestDir: "{app}\_internal"; Flags: ignoreversion sign
Source: "{#DistDir}\*"; Excludes: "\{#AppExe},\_internal\uv.exe"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs
#else
Source: "{#DistDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs
#endif
; Offline installs: a "wheels" folder next to the setup program (not compiled in).
Source: "{src}\wheels\*"; DestDir: "{app}\wheels"; Flags: external skipifsourcedoesntexist recursesubdirs createallsubdirs ignoreversion

[InstallDelete]
; An update replaces the program folder's runtime completely (the environment is elsewhere and stays).
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{autoprograms}\{#AppName} - repair or change GPU backend"; Filename: "{app}\{#AppExe}"; Parameters: "--setup"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
Type: filesandordirs; Name: "{app}\wheels"
Type: filesandordirs; Name: "{app}\_internal"

[Code]
{ The Python environment and PyTorch (several GB) live in %LOCALAPPDATA%\ChromaStudio, outside {app}.
  Ask before removing them; the app's own cache and the user's trainings are left alone. }
procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Data: String;
begin
  if CurUninstallStep <> usPostUninstall then
    exit;
  Data := ExpandConstant('{localappdata}\ChromaStudio');
  if not DirExists(Data + '\env') then
    exit;
  if UninstallSilent then
    exit;
  if MsgBox('Also remove the downloaded Python environment and PyTorch (several GB) in' + #13#10 + Data + '?' + #13#10#13#10 +
            'Your datasets, trainings and LoRAs are not stored there and are kept.',
            mbConfirmation, MB_YESNO) = IDYES then
  begin
    DelTree(Data + '\env', True, True, True);
    DelTree(Data + '\python', True, True, True);
    DelTree(Data + '\uv-cache', True, True, True);
    DelTree(Data + '\logs', True, True, True);
    DeleteFile(Data + '\install.json');
    DeleteFile(Data + '\constraints.txt');
  end;
end;
